// tc actions inside TCA_FLOWER_ACT ⇄ typed TcAction values: the envelope
// (./action.ts), one codec per kind, the builders the agent uses. Pure.
export * from './action.ts';
export * from './builders.ts';
export { TC_ACT, TC_ACT_GOTO_CHAIN, TC_ACT_JUMP, gotoChain, jump, verdictName, type Bitfield32, type GenParms } from './gen.ts';
export { type CsumParams } from './csum.ts';
export { CT_ACTION, type CtParams } from './ct.ts';
export { type GactParams } from './gact.ts';
export { MIRRED, type MirredParams } from './mirred.ts';
export { PEDIT_CMD, PEDIT_HTYPE, type PeditKey, type PeditParams } from './pedit.ts';
export { type PoliceParams, type RateSpec } from './police.ts';
export { TUNNEL_KEY_ACTION, type TunnelKeyParams } from './tunnel-key.ts';
export { VLAN_ACTION, type VlanParams } from './vlan.ts';
