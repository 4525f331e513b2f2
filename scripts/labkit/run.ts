// A lab run: its state plus the helpers that record a resource in the state
// file the moment it exists, so nothing a crashed `up` made is forgotten.
import { mkdirSync } from 'node:fs';
import { addNetns } from './netns.ts';
import type { ProcRecord } from './procs.ts';
import { saveState, type LabState } from './state.ts';

export class LabRun {
  constructor(readonly state: LabState) {}

  get prefix(): string {
    return this.state.prefix;
  }

  save(): void {
    saveState(this.state);
  }

  /** Records the netns, then creates it (a crash in between leaves a name `down` tolerates). */
  async addNetns(name: string): Promise<void> {
    if (!this.state.netns.includes(name)) {
      this.state.netns.push(name);
      this.save();
    }
    await addNetns(name);
  }

  recordProc = (p: ProcRecord): void => {
    this.state.procs = this.state.procs.filter((q) => q.name !== p.name);
    this.state.procs.push(p);
    this.save();
  };

  recordLink(desc: string): void {
    this.state.links.push(desc);
    this.save();
  }

  mkdir(sub: string): string {
    const d = `${this.state.dir}/${sub}`;
    mkdirSync(d, { recursive: true });
    return d;
  }

  proc(name: string): ProcRecord {
    const p = this.state.procs.find((q) => q.name === name);
    if (!p) throw new Error(`no process ${name} in lab ${this.prefix}`);
    return p;
  }
}
