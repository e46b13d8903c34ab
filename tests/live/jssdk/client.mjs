// A WuKongIM client on the official JS SDK (wukongimjssdk + ws), driven by imbridge's live tests.
//   node client.mjs <ws addr> <uid> <token> <seconds> [send <channel id> <channel type> <text>]
// Prints one JSON line per event: {"event":"status",...}, {"event":"message",...}, {"event":"sendack",...}.
// The SDK connects as it does by default (config.deviceFlag 1, web: lib/config.js); nothing here changes that.
import { register } from 'node:module';
import WebSocket from 'ws';

register('./hooks.mjs', import.meta.url);
globalThis.WebSocket = WebSocket; // the SDK does `new WebSocket(addr)` (lib/websocket.js)
const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
console.log = () => {}; // the SDK logs every frame; stdout is for the events

const [addr, uid, token, seconds, action, channelId, channelType, text] = process.argv.slice(2);
const WKSDK = (await import('wukongimjssdk')).default; // lib/index.js has a default export only
const sdk = WKSDK.shared();
sdk.config.addr = addr;
sdk.config.uid = uid;
sdk.config.token = token;
let sent = false;

sdk.connectManager.addConnectStatusListener(async (status, reasonCode) => {
  print({ event: 'status', status, reason_code: reasonCode, device_flag: sdk.config.deviceFlag });
  if (status === 1 && action === 'send' && !sent) {
    sent = true;
    const message = await sdk.chatManager.send(sdk.newMessageText(text), sdk.newChannel(channelId, Number(channelType)));
    print({ event: 'sent', client_msg_no: message.clientMsgNo });
  }
});
sdk.chatManager.addMessageListener((message) => {
  if (message.fromUID === uid) return; // the SDK hands our own sends to listeners too
  const content = message.content && message.content.text !== undefined ? message.content.text : null;
  print({ event: 'message', from_uid: message.fromUID, channel_id: message.channel.channelID,
    channel_type: message.channel.channelType, message_seq: message.messageSeq, text: content });
});
sdk.chatManager.addMessageStatusListener((ack) => {
  print({ event: 'sendack', reason_code: ack.reasonCode, message_seq: ack.messageSeq });
});
sdk.connect();
setTimeout(() => { try { sdk.disconnect(); } catch (_) {} process.exit(0); }, Number(seconds) * 1000);
