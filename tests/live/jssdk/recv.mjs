// Connect to WuKongIM as a user with the official JS SDK and print what arrives, one JSON line per event.
//   node recv.mjs --uid U --token T [--device 1] [--addr ws://127.0.0.1:5200] [--timeout 30]
// Lines (see sdk.mjs):
//   {"event":"status","status":1,"status_name":"Connected","reason_code":1,"uid":..,"device_flag":1}
//   {"event":"message","client_msg_no":..,"content":{"type":1,"content":"hi"},...}   a chat message
//   {"event":"cmd","content":{"type":99,"cmd":"..","param":{..}},...}                 a command message (type 99)
// Exit: 0 when --timeout seconds pass; 3 when the connect fails or the server kicks the client: a CONNACK
// refusing it (ConnectFail), a DISCONNECT (ConnectKick), or the socket closed before any CONNACK (how
// WuKongIM refuses a wrong token: it never answers and closes the idle socket); 2 on bad arguments.
import { CONNECTED, CONNECT_FAIL, CONNECT_KICK, configure, finish, messageEvent, parseFlags, print, statusEvent }
  from './sdk.mjs';

const flags = parseFlags(process.argv.slice(2), { addr: 'ws://127.0.0.1:5200', timeout: '30' }, ['uid', 'token']);
const sdk = await configure(flags);
let connected = false;
let done = false;

sdk.connectManager.addConnectStatusListener((status, reasonCode) => {
  if (done) return;
  print(statusEvent(sdk, status, reasonCode));
  if (status === CONNECTED) connected = true;
  if (status === CONNECT_FAIL || status === CONNECT_KICK || (status === 0 && !connected)) {
    done = true;
    finish(sdk, 3);
  }
});
// The SDK routes content type 99 (MessageContentType.cmd) to the command listeners only (lib/chat_manager.js).
sdk.chatManager.addMessageListener((message) => print(messageEvent('message', message)));
sdk.chatManager.addCMDListener((message) => print(messageEvent('cmd', message)));
sdk.connect();
setTimeout(() => { done = true; finish(sdk, 0); }, Number(flags.timeout) * 1000);
