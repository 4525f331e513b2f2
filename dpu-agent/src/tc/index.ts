// dpu-agent/src/tc: flower + actions codec (pure) and the rtnetlink I/O around it.
export * from './tc.ts';
export * from './filter.ts';
export * from './flower.ts';
export * from './actions/index.ts';
export * from './stats.ts';
export * from './encopts.ts';
export * from './tcmsg.ts';
export { RtNetlink, type RtNetlinkOptions } from '../netlink/socket.ts';
