// Shared by recv.mjs and send.mjs: the official WuKongIM JS SDK (npm wukongimjssdk 1.0.4) on Node, with `ws` 8
// as its WebSocket; command-line flags; one JSON line per event on stdout.
import { register } from 'node:module';
import WebSocket from 'ws';

register('./hooks.mjs', import.meta.url); // lets Node load the SDK's extensionless ES module imports
globalThis.WebSocket = WebSocket; // the SDK does `new WebSocket(addr)` (lib/websocket.js)
console.log = () => {}; // the SDK logs every frame; stdout is for our JSON lines only

/** Print one event as a JSON line. */
export const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

/** The SDK's ConnectStatus enum (lib/connect_manager.js), by value. */
export const STATUS_NAMES = ['Disconnect', 'Connected', 'Connecting', 'ConnectFail', 'ConnectKick'];
export const CONNECTED = 1;
export const CONNECT_FAIL = 3;
export const CONNECT_KICK = 4;

/** `--name value` pairs over `defaults`; a flag without a value is an error (exit 2). */
export function parseFlags(argv, defaults, required) {
  const flags = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) usage(`bad argument ${argv[i]}`);
    flags[argv[i].slice(2)] = argv[i + 1];
  }
  for (const name of required) if (flags[name] === undefined) usage(`--${name} is required`);
  return flags;
}

function usage(problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(2);
}

/** The SDK singleton configured for `flags` (not yet connected). */
export async function configure(flags) {
  const WKSDK = (await import('wukongimjssdk')).default; // lib/index.js has a default export only
  const sdk = WKSDK.shared();
  sdk.config.addr = flags.addr;
  sdk.config.uid = flags.uid;
  sdk.config.token = flags.token;
  // lib/config.js: 0 app, 1 web (the SDK's default), 2 pc. The server checks the token against this flag.
  if (flags.device !== undefined) sdk.config.deviceFlag = Number(flags.device);
  return sdk;
}

/** A connect-status event, as the SDK's listener reports it (status, reason code). */
export function statusEvent(sdk, status, reasonCode) {
  return { event: 'status', status, status_name: STATUS_NAMES[status] ?? String(status), reason_code: reasonCode,
    uid: sdk.config.uid, device_flag: sdk.config.deviceFlag };
}

/** A 64-bit id (the decoder's BigNumber) as its decimal string. */
export const id = (value) => (value === undefined || value === null ? null
  : typeof value === 'object' && typeof value.toFixed === 'function' ? value.toFixed() : String(value));

/** A received message, its payload decoded (`content` is the JSON payload as the sender wrote it). */
export function messageEvent(kind, message) {
  const content = message.content ?? null;
  return {
    event: kind, message_id: id(message.messageID), message_seq: message.messageSeq,
    client_msg_no: message.clientMsgNo, from_uid: message.fromUID, channel_id: message.channel.channelID,
    channel_type: message.channel.channelType, timestamp: message.timestamp,
    no_persist: Boolean(message.header.noPersist), sync_once: Boolean(message.header.syncOnce),
    red_dot: Boolean(message.header.reddot),
    content_type: content ? content.contentType : null, content: content ? content.contentObj ?? null : null,
    text: content && content.text !== undefined ? content.text : null, // a text message's text (MessageText)
  };
}

/** Disconnect without reconnecting, then exit with `code` once stdout is flushed. */
export function finish(sdk, code) {
  try { sdk.disconnect(); } catch (_) { /* already closed */ }
  process.stdout.write('', () => process.exit(code));
}
