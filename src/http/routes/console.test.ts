import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consoleFile } from './console.js';

describe('consoleFile: the console route serves only files of its build directory', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-console-'));
  const root = path.join(base, 'console');
  fs.mkdirSync(path.join(root, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  fs.writeFileSync(path.join(root, 'assets', 'a-1.js'), '');
  fs.writeFileSync(path.join(root, 'assets', 'x.exe'), '');
  fs.writeFileSync(path.join(base, 'secret.js'), '');
  fs.mkdirSync(path.join(root, 'dir.js'));
  fs.symlinkSync(path.join(base, 'secret.js'), path.join(root, 'assets', 'link.js'));
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('serves the page and its assets', () => {
    expect(consoleFile(root, '')).toBe(fs.realpathSync(path.join(root, 'index.html')));
    expect(consoleFile(root, 'assets/a-1.js')).toBe(fs.realpathSync(path.join(root, 'assets', 'a-1.js')));
  });

  it('refuses escapes, hidden and odd names, unknown types, directories and links out', () => {
    for (const rel of [
      '../secret.js',
      'assets/../../secret.js',
      '..',
      './index.html',
      '.hidden.js',
      'assets//a-1.js',
      '/etc/passwd',
      'assets\\..\\..\\secret.js',
      'index.html\u0000.js',
      'assets/x.exe',
      'dir.js',
      'assets/link.js',
      'nope.js',
      'a b.js',
      'x'.repeat(300) + '.js',
    ]) {
      expect(consoleFile(root, rel), rel).toBeNull();
    }
  });

  it('answers null when the console is not built', () => {
    expect(consoleFile(path.join(base, 'missing'), '')).toBeNull();
  });
});
