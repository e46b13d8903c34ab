#!/usr/bin/env node
// Generates UserSig test vectors with the official Tencent library `tls-sig-api-v2`
// (npm, https://github.com/tencentyun/tls-sig-api-v2-node) by freezing Date.now().
// Usage: see README.md in this folder.  Output: JSON on stdout.
//
// Only the `tls-sig-api-v2` package and Node core modules (zlib, crypto, path) are used.
'use strict';
var path = require('path');
var zlib = require('zlib');
var crypto = require('crypto');

function load(name) {
  // Resolve from the script's folder first, then from the current directory
  // (so the script can live in the repo while the package is installed in a temp dir).
  try { return require(name); } catch (e) {
    return require(path.join(process.cwd(), 'node_modules', name));
  }
}
var TLSSigAPIv2 = load('tls-sig-api-v2');
var pkg = load('tls-sig-api-v2/package.json');

var SAMPLE_KEY = '5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e';
var HEX_KEY_2 = '0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0';
var HEX_KEY_3 = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';
var ASCII_KEY = 'my-secret-key';
var ASCII_KEY_SYMBOLS = 'Key with spaces & symbols: !@#$%^*()_+-=[]{};,./?';
var UNICODE_KEY = '密钥-key-🔑';
var ID32 = 'abcdefghijklmnopqrstuvwxyz012345'; // exactly 32 bytes

// [sdk_app_id, key, identifier, time (Unix s), expire (s)]
var CASES = [
  // reference vector A and B (tencent-im-api.md section 2.5)
  [1400000000, SAMPLE_KEY, 'xiaojun', 1700000000, 15552000],
  [1400000000, SAMPLE_KEY, 'administrator', 1700000000, 86400],
  // official sample inputs across times and expiries
  [1400000000, SAMPLE_KEY, 'xiaojun', 1700000000, 1],
  [1400000000, SAMPLE_KEY, 'xiaojun', 1700000000, 86400],
  [1400000000, SAMPLE_KEY, 'xiaojun', 1700000000, 315360000],
  [1400000000, SAMPLE_KEY, 'xiaojun', 1600000000, 15552000],
  [1400000000, SAMPLE_KEY, 'xiaojun', 1893456000, 86400],
  [1400000000, SAMPLE_KEY, 'administrator', 1600000000, 15552000],
  [1400000000, SAMPLE_KEY, 'administrator', 1893456000, 315360000],
  // other sdkappids
  [1400123456, SAMPLE_KEY, 'xiaojun', 1700000000, 86400],
  [1400123456, SAMPLE_KEY, 'administrator', 1600000000, 1],
  [20000001, SAMPLE_KEY, 'xiaojun', 1700000000, 15552000],
  [20000001, SAMPLE_KEY, 'administrator', 1893456000, 86400],
  // unicode identifier
  [1400000000, SAMPLE_KEY, '用户一', 1700000000, 86400],
  [1400123456, HEX_KEY_2, '用户一', 1600000000, 15552000],
  // identifiers with _ - . @
  [1400000000, SAMPLE_KEY, 'user_01-a.b@example', 1700000000, 86400],
  [20000001, ASCII_KEY, 'a.b-c_d@e', 1893456000, 315360000],
  [1400123456, SAMPLE_KEY, '_-.@', 1700000000, 1],
  // 32-byte identifier
  [1400000000, SAMPLE_KEY, ID32, 1700000000, 15552000],
  [20000001, HEX_KEY_3, ID32, 1600000000, 86400],
  // other keys
  [1400000000, HEX_KEY_2, 'xiaojun', 1700000000, 86400],
  [1400123456, HEX_KEY_3, 'administrator', 1893456000, 15552000],
  [1400000000, ASCII_KEY, 'xiaojun', 1700000000, 86400],
  [1400123456, ASCII_KEY, 'administrator', 1600000000, 315360000],
  [20000001, ASCII_KEY_SYMBOLS, 'xiaojun', 1700000000, 86400],
  [1400000000, ASCII_KEY_SYMBOLS, '用户一', 1893456000, 1],
  [1400000000, UNICODE_KEY, 'xiaojun', 1700000000, 86400],
  [1400123456, UNICODE_KEY, 'user_01-a.b@example', 1600000000, 15552000],
  // numeric-looking identifiers
  [1400000000, SAMPLE_KEY, '1', 1700000000, 86400],
  [1400000000, SAMPLE_KEY, '144115197276518801', 1700000000, 15552000]
];

function decode(usersig) {
  var b64 = usersig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
  var json = zlib.inflateSync(Buffer.from(b64, 'base64')).toString('utf8');
  return { json: json, obj: JSON.parse(json) };
}

var realNow = Date.now;
var vectors = CASES.map(function (c) {
  var sdkAppId = c[0], key = c[1], identifier = c[2], time = c[3], expire = c[4];
  // The library computes currTime = Math.floor(Date.now() / 1000).
  // Freeze the clock 0.5 s into the intended second; floor() yields exactly `time`.
  Date.now = function () { return time * 1000 + 500; };
  var api = new TLSSigAPIv2.Api(sdkAppId, key);
  var usersig;
  try { usersig = api.genUserSig(identifier, expire); } finally { Date.now = realNow; }
  var d = decode(usersig);
  if (d.obj['TLS.time'] !== time) throw new Error('frozen clock did not produce TLS.time ' + time);
  var content = 'TLS.identifier:' + identifier + '\n' + 'TLS.sdkappid:' + sdkAppId + '\n' +
                'TLS.time:' + time + '\n' + 'TLS.expire:' + expire + '\n';
  var recomputed = crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(content, 'utf8').digest('base64');
  if (recomputed !== d.obj['TLS.sig']) throw new Error('TLS.sig mismatch for ' + JSON.stringify(c));
  return {
    sdk_app_id: sdkAppId,
    key: key,
    identifier: identifier,
    time: time,
    expire: expire,
    usersig: usersig,
    decoded: d.obj,
    decoded_json: d.json,
    signed_content: content
  };
});

var out = {
  generator: {
    package: pkg.name,
    version: pkg.version,
    node: process.version,
    how: 'tools/usersig_vectors/generate.js: for each case, Date.now is overridden to return time*1000+500 ' +
         '(the library uses Math.floor(Date.now()/1000) as TLS.time), then new Api(sdk_app_id, key).genUserSig(identifier, expire) ' +
         '(= genSig(identifier, expire, null)) is called. decoded = JSON.parse(zlib.inflate(base64(usersig with * -> +, - -> /, _ -> =))). ' +
         'decoded_json is the exact inflated JSON text (key order/spacing of the Node library). signed_content is the HMAC-SHA256 input; ' +
         'the script re-computes base64(HMAC-SHA256(utf8(key), signed_content)) and checks it equals decoded["TLS.sig"]. ' +
         'Keys are used as UTF-8 strings (not hex-decoded). No Tencent account or network access is involved.'
  },
  vectors: vectors
};
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
