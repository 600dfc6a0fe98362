// ONNX sessions of one model, on the execution provider the configuration asks for. onnxruntime-node
// has no automatic fallback: with `auto`, a CUDA failure is caught here, logged with its cause,
// and the model continues on CPU; with `cuda` it is an error.
import ort from 'onnxruntime-node';
import { LoadCancelledError, ModelLoadError } from './errors.js';
import { GRAPH_KINDS, type LoadedModel } from './manifest.js';
import type { ExecutionProvider, GraphKind, ProviderChoice } from './types.js';

export type StageSessions = Record<GraphKind, ort.InferenceSession>;

export interface ModelSessions {
  provider: ExecutionProvider;
  providerNote?: string;
  stages: StageSessions[];
}

function options(provider: ExecutionProvider, threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: 0 }] : ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // a failed CUDA load is reported once, by us, with its cause; not as native error spew
    logSeverityLevel: provider === 'cuda' ? 4 : 2,
  };
}

function checkDeclared(path: string, s: ort.InferenceSession, declared: { inputs: { name: string }[]; outputs: { name: string }[] }): void {
  const want = (l: { name: string }[]) => l.map((t) => t.name).join(', ');
  if (s.inputNames.join(', ') !== want(declared.inputs)) {
    throw new ModelLoadError(`${path}: inputs are [${s.inputNames.join(', ')}], manifest declares [${want(declared.inputs)}]`);
  }
  if (s.outputNames.join(', ') !== want(declared.outputs)) {
    throw new ModelLoadError(`${path}: outputs are [${s.outputNames.join(', ')}], manifest declares [${want(declared.outputs)}]`);
  }
}

async function open(path: string, provider: ExecutionProvider, threads: number): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, options(provider, threads));
  } catch (err) {
    if (provider === 'cuda') throw err;
    throw new ModelLoadError(`${path}: cannot load graph (${(err as Error).message})`);
  }
}

type Declared = { name: string; dtype: string; shape: (string | number)[] };

/** One run of every graph at batch 1 on zeros (the first run of a session is slow); its outputs
 * must have the dtypes and the fixed dimensions the manifest declares. */
async function warmUp(path: string, s: ort.InferenceSession, declared: { inputs: Declared[]; outputs: Declared[] }): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of declared.inputs) {
    const shape = t.shape.map((d) => (typeof d === 'number' ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.dtype === 'float32') feeds[t.name] = new ort.Tensor('float32', new Float32Array(n).fill(t.name === 'temperature' ? 1 : 0), shape);
    else if (t.dtype === 'int32') feeds[t.name] = new ort.Tensor('int32', new Int32Array(n), shape);
    else throw new ModelLoadError(`${path}: input '${t.name}' has dtype ${t.dtype}; the runtime feeds float32 and int32`);
  }
  let out: ort.InferenceSession.ReturnType;
  try {
    out = await s.run(feeds);
  } catch (err) {
    // a dtype or shape in the manifest that the graph does not take: name the file, as every other check does
    throw new ModelLoadError(`${path}: a run on the inputs the manifest declares failed (${(err as Error).message.split('\n')[0]})`);
  }
  try {
    for (const o of declared.outputs) {
      const v = out[o.name];
      if (v.type !== o.dtype) throw new ModelLoadError(`${path}: output '${o.name}' is ${v.type}, the manifest declares ${o.dtype}`);
      const fixed = o.shape.every((d, k) => typeof d !== 'number' || d === v.dims[k]);
      if (v.dims.length !== o.shape.length || !fixed) {
        throw new ModelLoadError(`${path}: output '${o.name}' has shape [${v.dims.join(', ')}] at batch 1, the manifest declares [${o.shape.join(', ')}]`);
      }
    }
  } finally {
    for (const v of Object.values(out)) v.dispose();
  }
}

/** Opens, checks and warms up every graph of a model. Creating a session is synchronous native work
 * (tens of ms to seconds a graph); between graphs the thread's event loop turns, so that a message
 * asking it to stop is read, and `stopped()` then ends the load (the sessions opened so far
 * released) with a LoadCancelledError. */
async function openAll(model: LoadedModel, provider: ExecutionProvider, threads: number, stopped: () => boolean): Promise<StageSessions[]> {
  const opened: ort.InferenceSession[] = [];
  const stages: StageSessions[] = [];
  try {
    for (const st of model.manifest.stages) {
      const s = {} as StageSessions;
      for (const kind of GRAPH_KINDS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (stopped()) throw new LoadCancelledError();
        const path = model.paths[st.name][kind];
        s[kind] = await open(path, provider, threads);
        opened.push(s[kind]);
        checkDeclared(path, s[kind], st.graphs[kind]);
        await warmUp(path, s[kind], st.graphs[kind]);
      }
      stages.push(s);
    }
  } catch (err) {
    if (err instanceof LoadCancelledError) for (const s of opened) await s.release();
    throw err;
  }
  return stages;
}

/** With `auto`, a CUDA failure comes back as `providerNote` (its cause); the main thread logs it
 * once per model (index.ts), not every worker that loads the model. */
export async function createSessions(model: LoadedModel, choice: ProviderChoice, threads: number, stopped: () => boolean = () => false): Promise<ModelSessions> {
  if (choice === 'cpu') return { provider: 'cpu', stages: await openAll(model, 'cpu', threads, stopped) };
  // A failed CUDA load is also written to stderr by onnxruntime's provider bridge, as a multi-line
  // colored native error per graph, through the process-wide logger that a session's
  // logSeverityLevel does not reach. Only env.logLevel does, and only when the process's first
  // session is created (the native environment is made once and shared by every thread; in the
  // service all workers get the same choice, so the first of them sets it). With `auto` that
  // failure is expected on a machine without CUDA and is reported by us, with its cause; errors of
  // later calls still reach us as exceptions. With `cuda` the failure stops start-up, and the cause
  // is logged by us, once.
  if (choice === 'auto' || choice === 'cuda') ort.env.logLevel = 'fatal';
  try {
    return { provider: 'cuda', stages: await openAll(model, 'cuda', threads, stopped) };
  } catch (err) {
    if (err instanceof LoadCancelledError) throw err;
    if (choice === 'cuda' || err instanceof ModelLoadError) {
      throw err instanceof ModelLoadError ? err : new ModelLoadError(`${model.dir}: CUDA execution provider failed: ${(err as Error).message}`);
    }
    const note = `CUDA execution provider unavailable, running on CPU: ${(err as Error).message.split('\n')[0]}`;
    return { provider: 'cpu', providerNote: note, stages: await openAll(model, 'cpu', threads, stopped) };
  }
}

/** Per stage, the first slice's context where the manifest declares it constant: one conditioning
 * run on an empty image with target 0, once at load. */
export async function firstContexts(model: LoadedModel, s: ModelSessions): Promise<(Float32Array | null)[]> {
  const out: (Float32Array | null)[] = [];
  const { height, width, channels } = model.manifest.image;
  const S = model.manifest.subscaleFactor;
  for (const [k, st] of model.manifest.stages.entries()) {
    if (!st.firstContextConstant) {
      out.push(null);
      continue;
    }
    const shape = [1, S * S, channels, height / S, width / S];
    const res = await s.stages[k].conditioning.run({
      slices: new ort.Tensor('int32', new Int32Array(shape.reduce((a, b) => a * b, 1)), shape),
      target: new ort.Tensor('int32', new Int32Array(1), [1]),
    });
    out.push((res.context.data as Float32Array).slice());
    for (const v of Object.values(res)) v.dispose();
  }
  return out;
}

export async function releaseSessions(s: ModelSessions): Promise<void> {
  for (const st of s.stages) for (const kind of GRAPH_KINDS) await st[kind].release();
}
