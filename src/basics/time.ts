/** Timestamps as Tinybird prints them in resource JSON: `2024-07-22 11:47:58.207606` (UTC). */
export function tbTime(iso: string | Date): string {
  const s = (typeof iso === 'string' ? iso : iso.toISOString()).replace('T', ' ').replace('Z', '');
  const [main, frac = ''] = s.split('.');
  return `${main}.${frac.padEnd(6, '0').slice(0, 6)}`;
}

export const nowIso = () => new Date().toISOString();
