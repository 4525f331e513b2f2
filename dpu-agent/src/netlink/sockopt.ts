// setsockopt(SOL_NETLINK, NETLINK_EXT_ACK) on the `netlink` package's socket.
//
// Why this exists: netlink@0.3.0's native binding exposes only membership and
// buffer-size setsockopts and never the fd, and without NETLINK_EXT_ACK the kernel
// drops the extack text (af_netlink.c netlink_ack_tlv_len: no TLVs unless the socket
// has NETLINK_F_EXT_ACK) — which is where mlx5 and cls_api explain a refusal. So we
// find the socket's fd (the /proc/self/fd entry whose getsockname() is AF_NETLINK
// with our port id) and call libc's setsockopt through koffi (prebuilt FFI, no
// compiler at install time). Failure is not fatal: errors then carry errno only.
import { readdirSync, readlinkSync } from 'node:fs';
import { libcFunction } from '../util/libc.ts';
import { readU16, readU32 } from './bytes.ts';

const SOL_SOCKET = 1;
const SO_PROTOCOL = 38;
const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
const AF_NETLINK = 16;

interface Libc {
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  getsockname: (fd: number, addr: Buffer, len: Buffer) => number;
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
}

function loadLibc(): Libc | null {
  const setsockopt = libcFunction<Libc['setsockopt']>('int setsockopt(int fd, int level, int name, void *val, uint32_t len)');
  const getsockname = libcFunction<Libc['getsockname']>('int getsockname(int fd, void *addr, void *len)');
  const getsockopt = libcFunction<Libc['getsockopt']>('int getsockopt(int fd, int level, int name, void *val, void *len)');
  return setsockopt && getsockname && getsockopt ? { setsockopt, getsockname, getsockopt } : null;
}

/** The fd of this process's netlink socket bound to `port` for `protocol`, or undefined. */
export function findNetlinkFd(port: number, protocol: number): number | undefined {
  const c = loadLibc();
  if (!c) return undefined;
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // the readdir's own fd, closed since
    }
    if (!target.startsWith('socket:')) continue;
    const addr = Buffer.alloc(12);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(12, 0);
    if (c.getsockname(fd, addr, len) !== 0) continue;
    if (readU16(addr, 0) !== AF_NETLINK || readU32(addr, 4) !== port >>> 0) continue;
    const proto = Buffer.alloc(4);
    const plen = Buffer.alloc(4);
    plen.writeUInt32LE(4, 0);
    if (c.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, proto, plen) !== 0 || proto.readInt32LE(0) !== protocol) continue;
    return fd;
  }
  return undefined;
}

/** Sets an int SOL_NETLINK option to 1 on the socket bound to `port`; false when it could not. */
export function enableNetlinkOption(port: number, protocol: number, option: number): boolean {
  const c = loadLibc();
  const fd = findNetlinkFd(port, protocol);
  if (!c || fd === undefined) return false;
  const one = Buffer.alloc(4);
  one.writeInt32LE(1, 0);
  return c.setsockopt(fd, SOL_NETLINK, option, one, 4) === 0;
}
