// Connect to WuKongIM as a user with the official JS SDK, send one text message over the WebSocket, print the
// server's SENDACK for it, and exit.
//   node send.mjs --uid U --token T --to CHANNEL_ID [--type 1|2] --text TEXT [--device 1]
//                 [--addr ws://127.0.0.1:5200] [--timeout 15]
// Lines: status lines as recv.mjs prints them, then
//   {"event":"sent","client_msg_no":"..","client_seq":1}
//   {"event":"sendack","message_id":"..","message_seq":N,"client_msg_no":"..","client_seq":1,"reason_code":1}
// Exit: 0 on a SENDACK with reason code 1 (success), 1 on any other reason code, 3 when the connect fails or
// the client is kicked (as recv.mjs), 4 when nothing is acknowledged within --timeout seconds, 2 on bad arguments.
import { CONNECTED, CONNECT_FAIL, CONNECT_KICK, configure, finish, id, parseFlags, print, statusEvent }
  from './sdk.mjs';

const flags = parseFlags(process.argv.slice(2), { addr: 'ws://127.0.0.1:5200', timeout: '15', type: '1' },
  ['uid', 'token', 'to', 'text']);
const sdk = await configure(flags);
const clientMsgNos = new Map(); // client seq -> client_msg_no: a SENDACK names only the client seq
let connected = false;
let sent = false;
let done = false;

sdk.chatManager.addMessageStatusListener((ack) => {
  if (done) return;
  print({ event: 'sendack', message_id: id(ack.messageID), message_seq: ack.messageSeq,
    client_msg_no: clientMsgNos.get(ack.clientSeq) ?? null, client_seq: ack.clientSeq, reason_code: ack.reasonCode });
  done = true;
  finish(sdk, ack.reasonCode === 1 ? 0 : 1);
});
sdk.connectManager.addConnectStatusListener(async (status, reasonCode) => {
  if (done) return;
  print(statusEvent(sdk, status, reasonCode));
  if (status === CONNECT_FAIL || status === CONNECT_KICK || (status === 0 && !connected)) {
    done = true;
    finish(sdk, 3);
    return;
  }
  if (status === CONNECTED && !sent) {
    connected = sent = true;
    // send() writes the SEND packet synchronously and resolves before any SENDACK can be read.
    const message = await sdk.chatManager.send(sdk.newMessageText(flags.text), sdk.newChannel(flags.to, Number(flags.type)));
    clientMsgNos.set(message.clientSeq, message.clientMsgNo);
    print({ event: 'sent', client_msg_no: message.clientMsgNo, client_seq: message.clientSeq });
  }
});
sdk.connect();
setTimeout(() => { if (!done) { done = true; print({ event: 'timeout' }); finish(sdk, 4); } }, Number(flags.timeout) * 1000);
