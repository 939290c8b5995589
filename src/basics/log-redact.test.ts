import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BufferedLog } from './log-redact.js';

const line = (level: number, msg: string) => `{"level":${level},"time":1,"msg":"${msg}"}\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BufferedLog', () => {
  it('holds info lines and writes them in one write, in order, after its delay', async () => {
    const writes: string[] = [];
    const log = new BufferedLog({ write: (s: string) => writes.push(s) }, 30);
    log.write(line(30, 'a'));
    log.write(line(20, 'b'));
    log.write(line(10, 'c'));
    expect(writes).toEqual([]);
    await sleep(80);
    expect(writes).toEqual([line(30, 'a') + line(20, 'b') + line(10, 'c')]);
  });

  it('writes a warning, an error or a line of another shape at once, after the lines held before it', () => {
    const writes: string[] = [];
    const log = new BufferedLog({ write: (s: string) => writes.push(s) }, 60_000);
    log.write(line(30, 'a'));
    log.write(line(40, 'w'));
    expect(writes).toEqual([line(30, 'a') + line(40, 'w')]);
    for (const l of [line(50, 'e'), line(60, 'f'), 'plain text\n', '{"level":"info"}\n']) {
      log.write(l);
      expect(writes.at(-1)).toBe(l);
    }
    log.flush();
    expect(writes).toHaveLength(5);
  });

  it('writes once it holds maxBytes', () => {
    const writes: string[] = [];
    const log = new BufferedLog({ write: (s: string) => writes.push(s) }, 60_000, 200);
    for (let i = 0; i < 3; i++) log.write(line(30, 'x'.repeat(20)));
    expect(writes).toEqual([]);
    log.write(line(30, 'y'.repeat(20)));
    expect(writes).toHaveLength(1);
    expect(writes[0].split('\n')).toHaveLength(5);
  });

  it('redacts every line', () => {
    const writes: string[] = [];
    const log = new BufferedLog({ write: (s: string) => writes.push(s) });
    log.write(`{"level":30,"url":"/v0/sql?q=1&token=p.abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz"}\n`);
    log.flush();
    expect(writes[0]).toBe('{"level":30,"url":"/v0/sql?q=1&token=[REDACTED]"}\n');
  });

  it('loses no line when the process exits: the held lines are written on exit', () => {
    // A process that logs 1,000 info lines to stdout, then exits at once (as main.ts does after a
    // graceful shutdown): every line is on its stdout.
    const script = [
      `import { BufferedLog } from ${JSON.stringify(path.join(import.meta.dirname, 'log-redact.ts'))};`,
      'const log = new BufferedLog(process.stdout, 60_000);',
      'for (let i = 0; i < 1000; i++) log.write(\'{"level":30,"i":\' + i + \'}\\n\');',
      'process.exit(0);',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1000);
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});
