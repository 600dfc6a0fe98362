// Models are loaded from their manifests alone: models/<name>/manifest.json names every graph,
// its sha256 and its declared inputs and outputs. Anything missing, corrupt or mismatched stops
// start-up with an error naming the file and what is wrong.
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ModelLoadError } from './errors.js';
import { channelPerm } from './channels.js';
import { sliceOrderProblem } from './subscale.js';
import type { GraphKind, ModelSummary } from './types.js';

export const SCHEMA_VERSION = 2;
export const GRAPH_KINDS: GraphKind[] = ['conditioning', 'decoder_row', 'decoder_pixel', 'sample_row', 'score', 'score_context'];

const TensorInfo = Type.Object({
  name: Type.String(),
  dtype: Type.Union([Type.Literal('float32'), Type.Literal('int32'), Type.Literal('int64')]),
  shape: Type.Array(Type.Union([Type.String(), Type.Integer()])),
});

const GraphInfo = Type.Object({
  file: Type.String(),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  inputs: Type.Array(TensorInfo),
  outputs: Type.Array(TensorInfo),
});

const Stage = Type.Object({
  name: Type.String(),
  role: Type.String(),
  bits: Type.Integer({ minimum: 1, maximum: 16 }),
  shift: Type.Integer({ minimum: 0 }),
  firstSlice: Type.Integer({ minimum: 0 }),
  lastSlice: Type.Integer({ minimum: 1 }),
  aux: Type.Union([Type.Null(), Type.Object({ shift: Type.Integer(), bits: Type.Integer() })]),
  /** the first slice's context is the same for every image (checked by the export): the runtime
   * computes it once and skips the conditioning network for that slice */
  firstContextConstant: Type.Boolean(),
  width: Type.Integer({ minimum: 1 }),
  classes: Type.Integer({ minimum: 2 }),
  parameters: Type.Integer(),
  testBitsPerDim: Type.Union([Type.Number(), Type.Null()]),
  graphs: Type.Object({
    conditioning: GraphInfo,
    decoder_row: GraphInfo,
    decoder_pixel: GraphInfo,
    sample_row: GraphInfo,
    score: GraphInfo,
    score_context: GraphInfo,
  }),
});

export const ManifestSchema = Type.Object({
  schemaVersion: Type.Literal(SCHEMA_VERSION),
  name: Type.String({ pattern: '^[a-zA-Z0-9._-]+$' }),
  description: Type.String(),
  image: Type.Object({
    height: Type.Integer({ minimum: 1 }),
    width: Type.Integer({ minimum: 1 }),
    channels: Type.Integer({ minimum: 1, maximum: 4 }),
    channelOrder: Type.Array(Type.String()),
    bitDepth: Type.Integer({ minimum: 1, maximum: 8 }),
    /** how image values are laid out: pixel by pixel, channels interleaved (the only layout served) */
    layout: Type.Literal('HWC'),
  }),
  subscaleFactor: Type.Integer({ minimum: 1 }),
  /** the offset [i, j] of each slice, in the order they are generated (slice k is x[i::S, j::S]) */
  sliceOrder: Type.Array(Type.Array(Type.Integer())),
  stages: Type.Array(Stage, { minItems: 1 }),
  evaluation: Type.Union([Type.Null(), Type.Object({ testBitsPerDim: Type.Number() })]),
  parameters: Type.Integer(),
  fixtures: Type.Optional(Type.String()),
});

export type Manifest = Static<typeof ManifestSchema>;
export type StageManifest = Manifest['stages'][number];

/** A manifest with its graph paths resolved. */
export interface LoadedModel {
  dir: string;
  manifest: Manifest;
  paths: Record<string, Record<GraphKind, string>>;
}

function fail(file: string, what: string): never {
  throw new ModelLoadError(`${file}: ${what}`);
}

function checkConsistency(file: string, m: Manifest): void {
  const { height, width, channels, channelOrder, bitDepth } = m.image;
  const S = m.subscaleFactor;
  if (height % S || width % S) fail(file, `subscale factor ${S} does not divide ${height}x${width}`);
  try {
    channelPerm(channelOrder, channels);
  } catch (err) {
    fail(file, (err as Error).message);
  }
  const order = sliceOrderProblem(m.sliceOrder, S);
  if (order) fail(file, `sliceOrder ${JSON.stringify(m.sliceOrder)} is not an order of the ${S * S} slices: ${order}`);
  let covered = 0;
  for (const st of m.stages) {
    if (st.lastSlice > S * S || st.firstSlice >= st.lastSlice) fail(file, `stage '${st.name}': bad slice range [${st.firstSlice}, ${st.lastSlice})`);
    if (st.classes !== 1 << st.bits) fail(file, `stage '${st.name}': ${st.classes} classes for ${st.bits} bits`);
    if (st.shift + st.bits > bitDepth) fail(file, `stage '${st.name}': bits beyond the ${bitDepth}-bit depth`);
    if (st.aux && st.aux.shift !== st.shift + st.bits) fail(file, `stage '${st.name}': aux plane must be the bits above the stage`);
    if (st.firstContextConstant && (st.aux || st.firstSlice !== 0)) fail(file, `stage '${st.name}': a constant first context needs firstSlice 0 and no aux plane`);
    for (const [graph, input] of [['decoder_pixel', 'caches'], ['decoder_row', 'vcaches']] as const) {
      const c = st.graphs[graph].inputs.find((i) => i.name === input);
      if (!c || c.shape.length !== 4 || !c.shape.slice(1).every((d) => typeof d === 'number')) {
        fail(file, `stage '${st.name}': ${graph} must declare a cache input '${input}' of shape [batch, a, b, c] with fixed a, b, c`);
      }
    }
    if (st.lastSlice === S * S) covered |= ((1 << st.bits) - 1) << st.shift;
  }
  if (covered !== (1 << bitDepth) - 1) fail(file, 'the stages do not generate every bit of the last slice');
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const file = join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    fail(file, `cannot read manifest (${(err as Error).message})`);
  }
  if (!Value.Check(ManifestSchema, raw)) {
    const e = [...Value.Errors(ManifestSchema, raw)][0];
    fail(file, `invalid manifest at '${e?.path || '/'}': ${e?.message}`);
  }
  const manifest = raw as Manifest;
  checkConsistency(file, manifest);
  const paths: LoadedModel['paths'] = {};
  for (const st of manifest.stages) {
    const p = {} as Record<GraphKind, string>;
    for (const kind of GRAPH_KINDS) {
      const g = st.graphs[kind];
      const path = resolve(dir, g.file);
      // a model is its folder: a graph elsewhere (../../other/x.onnx, /tmp/x.onnx) is not part of it
      const inside = relative(resolve(dir), path);
      if (!inside || inside.startsWith('..') || isAbsolute(inside)) fail(file, `stage '${st.name}', ${kind}: graph file '${g.file}' is outside the model's folder`);
      const info = await stat(path).catch(() => null);
      if (!info?.isFile()) fail(path, `missing graph file (stage '${st.name}', ${kind})`);
      const digest = await sha256(path);
      if (digest !== g.sha256) fail(path, `sha256 mismatch: manifest says ${g.sha256}, file is ${digest} (corrupt or replaced)`);
      p[kind] = path;
    }
    paths[st.name] = p;
  }
  return { dir, manifest, paths };
}

/** Every folder under modelsDir that holds a manifest.json, or only those whose manifests name one
 * of `only` (each of which must be there). */
export async function loadModels(modelsDir: string, only?: readonly string[]): Promise<LoadedModel[]> {
  const entries = await readdir(modelsDir, { withFileTypes: true }).catch((err: Error) => {
    throw new ModelLoadError(`${modelsDir}: cannot list models (${err.message})`);
  });
  const dirs: string[] = [];
  for (const e of entries) {
    const d = join(modelsDir, e.name);
    if (!(await stat(d).catch(() => null))?.isDirectory()) continue;   // follows symbolic links
    if (await stat(join(d, 'manifest.json')).catch(() => null)) dirs.push(d);
  }
  if (dirs.length === 0) throw new ModelLoadError(`${modelsDir}: no models (no */manifest.json)`);
  if (!only?.length) return oneFolderPerName(await Promise.all(dirs.sort().map(loadModel)));
  // The names come from the manifests; only the chosen models' graphs are read and checked. A
  // manifest that cannot be read for its name is not one of them (it stops nothing), but a name
  // that is not found says which manifests could not be read, in case it is one of those.
  const named = await Promise.all(dirs.map(async (d) => {
    const path = join(d, 'manifest.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      return { d, name: undefined, problem: `${path} (cannot be read: ${(err as Error).message})` };
    }
    try {
      const name = (JSON.parse(text) as { name?: unknown } | null)?.name;
      return { d, name: typeof name === 'string' ? name : undefined, problem: typeof name === 'string' ? undefined : `${path} (no name)` };
    } catch (err) {
      return { d, name: undefined, problem: `${path} (not valid JSON: ${(err as Error).message})` };
    }
  }));
  const missing = only.filter((n) => !named.some((m) => m.name === n));
  if (missing.length) {
    const there = named.flatMap((m) => (m.name === undefined ? [] : [m.name])).sort().join(', ');
    const unreadable = named.flatMap((m) => (m.problem ? [m.problem] : []));
    throw new ModelLoadError(`${modelsDir}: no model named ${missing.map((n) => `'${n}'`).join(', ')} (there: ${there || 'none'}` +
      `${unreadable.length ? `; manifests that could not be read: ${unreadable.join(', ')}` : ''})`);
  }
  return oneFolderPerName(await Promise.all(named.filter((m) => m.name !== undefined && only.includes(m.name)).map((m) => m.d).sort().map(loadModel)));
}

/** Requests name models by their manifests' names: two folders with one name (a copy left beside
 * the original) would serve one and load both, silently. */
function oneFolderPerName(models: LoadedModel[]): LoadedModel[] {
  const seen = new Map<string, string>();
  for (const m of models) {
    const other = seen.get(m.manifest.name);
    if (other !== undefined) {
      fail(join(m.dir, 'manifest.json'), `model name '${m.manifest.name}' is also the name in ${join(other, 'manifest.json')}: each model needs its own name`);
    }
    seen.set(m.manifest.name, m.dir);
  }
  return models;
}

/** The model's identity: a digest of every graph's sha256 (checked at load), stage by stage, and of
 * what decides how the runtime feeds them (the slice and channel orders, each stage's bits and
 * slices): a change to any of them changes what the same seed samples. */
export function modelVersion(m: Manifest): string {
  const h = createHash('sha256');
  for (const st of m.stages) for (const [kind, g] of Object.entries(st.graphs).sort(([a], [b]) => a.localeCompare(b))) h.update(`${st.name}/${kind}:${g.sha256}\n`);
  h.update(JSON.stringify({
    sliceOrder: m.sliceOrder, channelOrder: m.image.channelOrder,
    stages: m.stages.map((s) => [s.bits, s.shift, s.firstSlice, s.lastSlice, s.aux ? [s.aux.shift, s.aux.bits] : null]),
  }));
  return h.digest('hex').slice(0, 16);
}

export function summarize(m: Manifest, provider: ModelSummary['provider'], providerNote?: string): ModelSummary {
  return {
    name: m.name,
    version: modelVersion(m),
    description: m.description,
    image: { ...m.image },
    subscaleFactor: m.subscaleFactor,
    sliceOrder: m.sliceOrder.map(([i, j]) => [i, j] as [number, number]),
    stages: m.stages.map((s) => ({
      name: s.name, role: s.role, bits: s.bits, shift: s.shift,
      firstSlice: s.firstSlice, lastSlice: s.lastSlice, testBitsPerDim: s.testBitsPerDim,
    })),
    testBitsPerDim: m.evaluation?.testBitsPerDim ?? null,
    parameters: m.parameters,
    provider,
    ...(providerNote ? { providerNote } : {}),
  };
}
