// dpu-agent/src/tc: flower + actions codec (pure) and the tc calls over netlink/ (the socket is netlink/socket.ts).
export * from './tc.ts';
export * from './filter.ts';
export * from './flower.ts';
export * from './actions/index.ts';
export * from './stats.ts';
export * from './encopts.ts';
export * from './tcmsg.ts';
export * from './view.ts';
