// Node module hooks for wukongimjssdk 1.0.4: its lib/*.js are ES modules with extensionless relative imports
// ("./const", "from '.'") in a package without "type":"module", which Node's ESM loader refuses. A relative
// specifier that is not found is retried with ".js" (or "/index.js"), and lib/*.js is loaded as ESM.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (!specifier.startsWith('.')) throw error;
    if (error.code === 'ERR_MODULE_NOT_FOUND' && !specifier.endsWith('.js')) return next(`${specifier}.js`, context);
    if (error.code === 'ERR_UNSUPPORTED_DIR_IMPORT') return next(`${specifier.replace(/\/?$/, '/')}index.js`, context);
    throw error;
  }
}

export async function load(url, context, next) {
  if (url.includes('/node_modules/wukongimjssdk/lib/') && url.endsWith('.js')) return next(url, { ...context, format: 'module' });
  return next(url, context);
}
