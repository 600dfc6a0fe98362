// The benchmark's chart: an SVG drawn here (no plotting library), rendered to PNG with sharp.
// Three panels for the headline thread setting: sampling images/s (the runtime in each decode mode
// against PyTorch), likelihood images/s (log scale) and every target as measured / goal.
import sharp from 'sharp';
import { decodeModes, fmt, setupName, targets, torchSetup, type BenchResult } from './bench-report.js';

const W = 1200;
const H = 700;
const FONT = 'DejaVu Sans, sans-serif';
const COLOURS = { runtime: '#2b6cb0', pixel: '#90cdf4', PyTorch: '#dd6b20' } as const;

interface Bar { series: keyof typeof COLOURS; value: number }
interface Group { label: string; bars: Bar[] }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(x: number, y: number, s: string, o: { size?: number; anchor?: string; weight?: string; fill?: string; rotate?: number } = {}): string {
  const rot = o.rotate ? ` transform="rotate(${o.rotate} ${x} ${y})"` : '';
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${o.size ?? 12}" text-anchor="${o.anchor ?? 'start'}"`
    + ` font-weight="${o.weight ?? 'normal'}" fill="${o.fill ?? '#222'}"${rot}>${esc(s)}</text>`;
}

/** Log-scale vertical bars, grouped, with each value written above its bar. */
function barPanel(x: number, y: number, w: number, h: number, title: string, yLabel: string, groups: Group[]): string {
  const parts: string[] = [text(x + w / 2, y, title, { size: 15, anchor: 'middle', weight: 'bold' })];
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  if (!values.length) return parts.join('');
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values) * 1.5));
  const top = y + 30;
  const bottom = y + h - 60;
  const left = x + 60;
  const right = x + w - 10;
  const ys = (v: number) => bottom - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (bottom - top);
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    parts.push(`<line x1="${left}" x2="${right}" y1="${ys(d).toFixed(1)}" y2="${ys(d).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(left - 6, ys(d) + 4, fmt(d), { size: 11, anchor: 'end', fill: '#555' }));
  }
  parts.push(text(x + 14, (top + bottom) / 2, yLabel, { size: 12, anchor: 'middle', rotate: -90, fill: '#444' }));
  const gw = (right - left) / groups.length;
  groups.forEach((g, i) => {
    const bw = Math.min(34, (gw * 0.8) / g.bars.length);
    const gx = left + i * gw + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, j) => {
      if (!(b.value > 0)) return;
      const bx = gx + j * bw;
      parts.push(`<rect x="${bx.toFixed(1)}" y="${ys(b.value).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(bottom - ys(b.value)).toFixed(1)}" fill="${COLOURS[b.series]}"/>`);
      parts.push(text(bx + bw / 2 - 1, ys(b.value) - 4, fmt(b.value), { size: 10, anchor: 'middle', fill: '#333' }));
    });
    const [l1, l2] = g.label.split('\n');
    parts.push(text(left + i * gw + gw / 2, bottom + 16, l1, { size: 11, anchor: 'middle' }));
    if (l2) parts.push(text(left + i * gw + gw / 2, bottom + 30, l2, { size: 11, anchor: 'middle', fill: '#555' }));
  });
  parts.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#888"/>`);
  return parts.join('');
}

/** Every target as a horizontal bar of measured / goal (for the delay ceiling: goal / measured),
 * log scale, with the goal at 1. */
function targetPanel(x: number, y: number, w: number, res: BenchResult): string {
  const r = res.runs[0];
  const checks = targets(r, res.settings.concurrency, res.settings.likelihoodBatches, res.settings.workers);
  const parts: string[] = [text(x + w / 2, y, `Targets, runtime ${setupName(r, res.settings.workers)}: measured / goal (right of the line = met)`, { size: 15, anchor: 'middle', weight: 'bold' })];
  const left = x + 430;
  const right = x + w - 240;
  const lo = Math.log10(0.05);
  const hi = Math.log10(20);
  const xs = (v: number) => left + ((Math.log10(Math.min(20, Math.max(0.05, v))) - lo) / (hi - lo)) * (right - left);
  const rowH = 22;
  const top = y + 22;
  for (const t of [0.1, 1, 10]) {
    parts.push(`<line x1="${xs(t).toFixed(1)}" x2="${xs(t).toFixed(1)}" y1="${top - 4}" y2="${top + checks.length * rowH}" stroke="${t === 1 ? '#222' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    parts.push(text(xs(t), top + checks.length * rowH + 14, `${t}×`, { size: 11, anchor: 'middle', fill: '#555' }));
  }
  checks.forEach((c, i) => {
    const ry = top + i * rowH;
    const v = c.unit === 'x' ? c.measured / c.goal : c.goal / Math.max(c.measured, 1e-3);
    const colour = c.pass ? '#2f855a' : '#c53030';
    parts.push(text(left - 8, ry + 14, `${c.model}: ${c.name}`, { size: 11, anchor: 'end' }));
    const x0 = xs(1);
    const x1 = xs(v);
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${ry + 3}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowH - 6}" fill="${colour}" opacity="0.85"/>`);
    const label = c.unit === 'x' ? `${fmt(c.measured)}× (goal ${c.goal}×)` : `${c.measured.toFixed(1)} ms (goal < ${c.goal})`;
    parts.push(text(right + 8, ry + 14, `${c.pass ? 'PASS' : 'MISS'} ${label}`, { size: 11, fill: colour, weight: 'bold' }));
  });
  return parts.join('');
}

export function chartSvg(res: BenchResult): string {
  const r = res.runs[0];
  const short = (n: string) => n.replace(/-fmnist$/, '');
  // runtime: the headline decode mode (row) in dark blue, the per-pixel mode in light blue
  const sampling: Group[] = r.models.flatMap((m) => m.runtime.sampling.map((p) => ({
    label: `${short(m.name)}\nc = ${p.concurrency}`,
    bars: [
      { series: 'runtime' as const, value: p.imagesPerSec },
      ...decodeModes(m).slice(1).map((d) => ({ series: 'pixel' as const, value: d.sampling.find((q) => q.concurrency === p.concurrency)?.imagesPerSec ?? 0 })),
      { series: 'PyTorch' as const, value: m.torch.sampling.find((q) => q.concurrency === p.concurrency)?.imagesPerSec ?? 0 },
    ],
  })));
  const modes = r.models[0] ? decodeModes(r.models[0]).map((d) => d.mode) : ['row'];
  const names: Record<keyof typeof COLOURS, string> = {
    runtime: modes.length > 1 ? `runtime, decode ${modes[0]}` : 'spn-serve runtime',
    pixel: `runtime, decode ${modes[1] ?? 'pixel'}`,
    PyTorch: 'PyTorch reference',
  };
  const shown = (Object.keys(COLOURS) as (keyof typeof COLOURS)[]).filter((k) => k !== 'pixel' || modes.length > 1);
  const likelihood: Group[] = r.models.flatMap((m) => m.runtime.likelihood.map((p) => ({
    label: `${short(m.name)}\nbatch ${p.batch}`,
    bars: [
      { series: 'runtime' as const, value: p.imagesPerSec },
      { series: 'PyTorch' as const, value: m.torch.likelihood.find((q) => q.batch === p.batch)?.imagesPerSec ?? 0 },
    ],
  })));
  const nChecks = targets(r, res.settings.concurrency, res.settings.likelihoodBatches).length;
  const height = Math.max(H, 510 + 22 + nChecks * 22 + 60);
  const legend = shown.map((k, i) =>
    `<rect x="${W - 175 * shown.length + i * 175}" y="62" width="14" height="14" fill="${COLOURS[k]}"/>` + text(W - 175 * shown.length + 20 + i * 175, 74, names[k], { size: 12 })).join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}">`,
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    text(20, 30, `spn-serve benchmark${res.quick ? ' (quick mode)' : ''}: runtime (onnxruntime-node, CPU) vs PyTorch reference sampler`, { size: 17, weight: 'bold' }),
    text(20, 54, `runtime ${setupName(r, res.settings.workers)}, ${torchSetup(r)}; ${res.machine.cpu}, ${res.machine.cores} cores; ${res.date}`, { size: 12, fill: '#555' }),
    legend,
    barPanel(10, 95, 700, 380, 'Sampling: images/s (runtime: c concurrent requests; PyTorch: batch c)', 'images/s (log)', sampling),
    barPanel(720, 95, 470, 380, 'Likelihood: images/s', 'images/s (log)', likelihood),
    targetPanel(10, 510, W - 20, res),
    res.busyWarning ? text(20, height - 12, `Warning: ${res.busyWarning.length > 170 ? `${res.busyWarning.slice(0, 167)}...` : res.busyWarning}`, { size: 11, fill: '#c53030' }) : '',
    '</svg>',
  ].join('\n');
}

export function renderChart(res: BenchResult): Promise<Buffer> {
  return sharp(Buffer.from(chartSvg(res))).png().toBuffer();
}
