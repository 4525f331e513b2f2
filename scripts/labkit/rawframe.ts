// Hand-made Ethernet frames for the attack tests — what a root tenant on the host
// can put on a VF: forged source MAC/IP, gratuitous ARP for someone else's address.
// Builders are pure; `sendFrames` writes them on an AF_PACKET socket through libc
// (koffi, as netlink/sockopt.ts does), so no packet tool (scapy, mausezahn) is needed.
//   node --import tsx scripts/labkit/rawframe.ts send DEV COUNT HEXFRAME     (inside the netns)
//   node --import tsx scripts/labkit/rawframe.ts capture DEV MS NEEDLEHEX…  (counts matching frames)
import koffi from 'koffi';

const mac = (s: string): Buffer => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
const ip4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += (b[b.length - 1] ?? 0) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

function eth(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  mac(dst).copy(h, 0);
  mac(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

/** ARP (op 1 request, 2 reply) in a broadcast frame unless `ethDst` is given. Gratuitous: tpa = spa. */
export function arpFrame(o: { ethSrc: string; sha: string; spa: string; tha?: string; tpa: string; op?: 1 | 2; ethDst?: string }): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(o.op ?? 1, 6);
  mac(o.sha).copy(a, 8);
  ip4(o.spa).copy(a, 14);
  mac(o.tha ?? '00:00:00:00:00:00').copy(a, 18);
  ip4(o.tpa).copy(a, 24);
  return eth(o.ethDst ?? 'ff:ff:ff:ff:ff:ff', o.ethSrc, 0x0806, a);
}

/** ICMP echo request with whatever source MAC/IP the sender claims. */
export function icmpEchoFrame(o: { ethSrc: string; ethDst: string; src: string; dst: string; id?: number; seq?: number; fill?: number }): Buffer {
  const icmp = Buffer.alloc(8 + 32, o.fill ?? 0x61);
  icmp[0] = 8;
  icmp[1] = 0;
  icmp.writeUInt16BE(0, 2);
  icmp.writeUInt16BE(o.id ?? 0x4242, 4);
  icmp.writeUInt16BE(o.seq ?? 1, 6);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = 1;
  ip4(o.src).copy(ip, 12);
  ip4(o.dst).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return eth(o.ethDst, o.ethSrc, 0x0800, Buffer.concat([ip, icmp]));
}

/** Sends `frame` `count` times on `dev` (AF_PACKET, SOCK_RAW). Returns how many the kernel accepted. */
export function sendFrames(dev: string, frame: Buffer, count: number): number {
  const lib = koffi.load('libc.so.6');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const ifindex = lib.func('unsigned int if_nametoindex(const char *name)');
  const sendto = lib.func('long sendto(int fd, const void *buf, unsigned long len, int flags, const void *addr, unsigned int alen)');
  const close = lib.func('int close(int fd)');
  const AF_PACKET = 17;
  const SOCK_RAW = 3;
  const fd = socket(AF_PACKET, SOCK_RAW, 0) as number;
  if (fd < 0) throw new Error('socket(AF_PACKET) failed (root?)');
  try {
    const idx = ifindex(dev) as number;
    if (!idx) throw new Error(`no interface ${dev}`);
    // struct sockaddr_ll: family u16, protocol be16, ifindex i32, hatype u16, pkttype u8, halen u8, addr[8]
    const sll = Buffer.alloc(20);
    sll.writeUInt16LE(AF_PACKET, 0);
    sll.writeUInt16BE(frame.readUInt16BE(12), 2);
    sll.writeInt32LE(idx, 4);
    sll[11] = 6;
    frame.copy(sll, 12, 0, 6);
    let ok = 0;
    for (let i = 0; i < count; i++) if ((sendto(fd, frame, frame.length, 0, sll, sll.length) as number) === frame.length) ok++;
    return ok;
  } finally {
    close(fd);
  }
}

/**
 * Counts frames received on `dev` for `ms` that contain each needle (hex byte
 * strings, e.g. an ARP sha+spa pair or a payload marker). Outgoing frames are
 * skipped (sockaddr_ll pkttype PACKET_OUTGOING). Prints "ready" once listening.
 */
export function captureCount(dev: string, ms: number, needles: string[], onReady: () => void): number[] {
  const lib = koffi.load('libc.so.6');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const ifindex = lib.func('unsigned int if_nametoindex(const char *name)');
  const bind = lib.func('int bind(int fd, const void *addr, unsigned int alen)');
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *val, unsigned int len)');
  const recvfrom = lib.func('long recvfrom(int fd, void *buf, unsigned long len, int flags, void *addr, _Inout_ unsigned int *alen)');
  const close = lib.func('int close(int fd)');
  const ETH_P_ALL_BE = 0x0300; // htons(0x0003)
  const fd = socket(17, 3, ETH_P_ALL_BE) as number;
  if (fd < 0) throw new Error('socket(AF_PACKET) failed (root?)');
  const counts = needles.map(() => 0);
  const want = needles.map((n) => Buffer.from(n, 'hex'));
  try {
    const idx = ifindex(dev) as number;
    if (!idx) throw new Error(`no interface ${dev}`);
    const sll = Buffer.alloc(20);
    sll.writeUInt16LE(17, 0);
    sll.writeUInt16BE(0x0003, 2);
    sll.writeInt32LE(idx, 4);
    if ((bind(fd, sll, sll.length) as number) !== 0) throw new Error('bind failed');
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(0n, 0);
    tv.writeBigInt64LE(100_000n, 8); // 100 ms
    setsockopt(fd, 1, 20, tv, tv.length); // SOL_SOCKET, SO_RCVTIMEO
    onReady();
    const buf = Buffer.alloc(65536);
    const from = Buffer.alloc(20);
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const alen = [20];
      const n = recvfrom(fd, buf, buf.length, 0, from, alen) as number;
      if (n <= 0) continue;
      if (from[10] === 4) continue; // PACKET_OUTGOING
      const frame = buf.subarray(0, n);
      want.forEach((w, i) => {
        if (frame.includes(w)) counts[i] = (counts[i] ?? 0) + 1;
      });
    }
  } finally {
    close(fd);
  }
  return counts;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [mode, dev, a, ...rest] = process.argv.slice(2);
  if (mode === 'send' && dev && a && rest[0]) {
    process.stdout.write(`${sendFrames(dev, Buffer.from(rest[0], 'hex'), Number(a))}\n`);
  } else if (mode === 'capture' && dev && a) {
    const counts = captureCount(dev, Number(a), rest, () => process.stdout.write('ready\n'));
    process.stdout.write(`${JSON.stringify(counts)}\n`);
  } else {
    process.stderr.write('usage: rawframe.ts send DEV COUNT HEXFRAME | capture DEV MS NEEDLEHEX…\n');
    process.exit(2);
  }
}
