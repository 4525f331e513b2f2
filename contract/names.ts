// The names a host may send, validated the same way on both sides: the agent
// refuses them at the API edge, the host side fails fast before calling. Pure.
// Each rule cites where it comes from.

/** Kubernetes namespace: DNS-1123 label (k8s.io/apimachinery validation.IsDNS1123Label). */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes pod name: DNS-1123 subdomain (validation.IsDNS1123Subdomain): ≤ 253, dot-separated labels. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Pod UID: canonical UUID text (types.UID is a UUID string; kubelet passes it as K8S_POD_UID). */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Sandbox (CNI_CONTAINERID): CNI spec says alphanumeric plus _ . -; we also cap the length. */
const SANDBOX_ID = /^[A-Za-z0-9_.-]{1,128}$/;
/** Characters the kernel refuses in a netdev name (dev_valid_name): '/', ':', whitespace; plus controls. */
const IFNAME_BAD = /[/:\s\u0000-\u001f\u007f]/u;
/** Host names in client certificates (CN): RFC 1123 host name characters, ≤ 253. */
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function isPodNamespace(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isPodName(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export function isPodUid(s: string): boolean {
  return UUID.test(s);
}

export function isSandboxId(s: string): boolean {
  return SANDBOX_ID.test(s);
}

/**
 * Same checks as libcni ValidateInterfaceName and the kernel's dev_valid_name:
 * 1..15 bytes (IFNAMSIZ - 1), not '.' or '..', no '/', ':' or whitespace.
 */
export function isIfname(s: string): boolean {
  if (s.length === 0 || s === '.' || s === '..') return false;
  if (Buffer.byteLength(s, 'utf8') > 15) return false;
  return !IFNAME_BAD.test(s);
}

export function isHostName(s: string): boolean {
  return s.length <= 253 && HOST_NAME.test(s);
}
