// A man page from a program's --help text (pure), so `man 8 dpu-agent` says
// what `dpu-agent --help` says and cannot drift from it.

/** Escapes a line for roff: backslashes, and a leading . or ' (control characters). */
export function roffLine(line: string): string {
  const l = line.replace(/\\/g, '\\e');
  return /^[.']/.test(l) ? `\\&${l}` : l;
}

export interface ManPage {
  readonly name: string;
  readonly section: number;
  readonly version: string;
  /** YYYY-MM-DD */
  readonly date: string;
  readonly summary: string;
  readonly help: string;
  readonly files?: readonly { path: string; what: string }[];
  readonly seeAlso?: readonly string[];
}

export function manPage(p: ManPage): string {
  const out = [
    `.TH ${p.name.toUpperCase()} ${p.section} "${p.date}" "${p.name} ${p.version}"`,
    '.SH NAME',
    `${p.name} \\- ${p.summary}`,
    '.SH DESCRIPTION',
    'The text of',
    `.B ${p.name} \\-\\-help:`,
    '.PP',
    '.nf',
    ...p.help.trimEnd().split('\n').map(roffLine),
    '.fi',
  ];
  if (p.files?.length) {
    out.push('.SH FILES');
    for (const f of p.files) out.push('.TP', `.I ${f.path}`, roffLine(f.what));
  }
  if (p.seeAlso?.length) out.push('.SH SEE ALSO', p.seeAlso.join(', '));
  return `${out.join('\n')}\n`;
}
