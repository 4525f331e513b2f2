// libc functions Node has no binding for (setns, setsockopt on a foreign fd,
// malloc_trim), called through koffi: prebuilt FFI, no compiler at install time.
// Each is bound on first use and cached; null where koffi, libc.so.6 or the symbol
// is missing (a musl system has no malloc_trim), so callers degrade instead of throw.
import { createRequire } from 'node:module';

type Lib = ReturnType<typeof import('koffi').load>;
let lib: Lib | null | undefined;
const bound = new Map<string, unknown>();

function libc(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    const require = createRequire(import.meta.url);
    lib = (require('koffi') as typeof import('koffi')).load('libc.so.6');
  } catch {
    lib = null;
  }
  return lib;
}

/** The libc function declared by `decl` (a C prototype, koffi syntax), or null. */
export function libcFunction<F>(decl: string): F | null {
  if (bound.has(decl)) return bound.get(decl) as F | null;
  let fn: F | null = null;
  try {
    fn = (libc()?.func(decl) as F | undefined) ?? null;
  } catch {
    fn = null;
  }
  bound.set(decl, fn);
  return fn;
}
