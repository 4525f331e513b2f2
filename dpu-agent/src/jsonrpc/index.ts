export {
  JsonStreamParser,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_NESTING_DEPTH,
  type JsonStreamParserOptions,
} from './framing.ts';
export { parseRemote, parseRemotes, formatRemote, OVSDB_DEFAULT_PORT, type Remote } from './remote.ts';
export {
  connectTransport,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type TlsFiles,
  type ConnectTransportOptions,
} from './transport.ts';
export {
  JsonRpcConnection,
  DEFAULT_PROBE_INTERVAL_MS,
  type JsonRpcConnectionOptions,
  type JsonRpcConnectOptions,
  type JsonRpcConnectionEvents,
  type RequestOptions,
  type ReplyFn,
} from './connection.ts';
