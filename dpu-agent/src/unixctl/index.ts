export { UnixctlClient, type UnixctlConnectOptions, type UnixctlCallOptions } from './client.ts';
export { unixctlPath } from './path.ts';
