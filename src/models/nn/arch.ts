/**
 * The network architectures as data: a list of layers from which both the parameter layout (names,
 * shapes, fan-in) and the forward pass are derived, so the two cannot disagree. No TF.js here: the
 * layout of ResNet18 can be built without loading the backend.
 */
import type { ModelSpec, ParamLayout, Segment } from '../types.js';

export type NnKind = 'cnn' | 'resnet18' | 'femnist-cnn';
export const NN_KINDS: readonly NnKind[] = ['cnn', 'resnet18', 'femnist-cnn'];

/** Image shape [height, width, channels]; rows of the data are images flattened in NHWC order. */
export type ImageShape = [number, number, number];

export type Layer =
  /** k×k convolution with zero padding ⌊k/2⌋ on every side (PyTorch's `padding=k//2`) */
  | { op: 'conv'; name: string; k: number; out: number; stride: number; bias: boolean }
  /** BatchNorm over (batch, height, width) with affine γ, β */
  | { op: 'bn'; name: string }
  | { op: 'relu' }
  /** 2×2 max-pooling, stride 2, no padding */
  | { op: 'maxpool' }
  /** mean over height and width */
  | { op: 'gap' }
  | { op: 'flatten' }
  | { op: 'dense'; name: string; out: number }
  /** ResNet BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 1×1 conv + BN shortcut when the shape changes */
  | { op: 'block'; name: string; out: number; stride: number };

/** What a parameter is: decides its initialisation and whether it is prunable by default. */
export type ParamRole = 'weight' | 'bias' | 'gamma' | 'beta';

export interface ParamDef {
  name: string;
  shape: number[];
  role: ParamRole;
  /** inputs feeding one output unit (He initialisation scale) */
  fanIn: number;
}

const conv = (name: string, k: number, out: number, stride = 1, bias = true): Layer => ({ op: 'conv', name, k, out, stride, bias });
const dense = (name: string, out: number): Layer => ({ op: 'dense', name, out });
const relu: Layer = { op: 'relu' };
const maxpool: Layer = { op: 'maxpool' };

/** The layers of a network for `nClasses` outputs. */
export function layersOf(kind: NnKind, nClasses: number): Layer[] {
  switch (kind) {
    case 'cnn':
      // TensorFlow's CIFAR-10 tutorial CNN with 'same' convolutions and a third pooling: 122,570 parameters at 32×32×3.
      return [
        conv('conv1', 3, 32), relu, maxpool,
        conv('conv2', 3, 64), relu, maxpool,
        conv('conv3', 3, 64), relu, maxpool,
        { op: 'flatten' }, dense('fc1', 64), relu, dense('fc2', nClasses),
      ];
    case 'femnist-cnn':
      // LEAF's FEMNIST CNN with the 2048-unit hidden layer narrowed to 128: 461,630 parameters at 28×28×1, 62 classes.
      return [
        conv('conv1', 5, 32), relu, maxpool,
        conv('conv2', 5, 64), relu, maxpool,
        { op: 'flatten' }, dense('fc1', 128), relu, dense('fc2', nClasses),
      ];
    case 'resnet18': {
      // CIFAR stem (3×3 conv, stride 1, no max-pool), BasicBlocks [2, 2, 2, 2]: 11,173,962 parameters at 10 classes.
      const layers: Layer[] = [conv('conv1', 3, 64, 1, false), { op: 'bn', name: 'bn1' }, relu];
      [64, 128, 256, 512].forEach((width, i) => {
        for (let b = 0; b < 2; b++) layers.push({ op: 'block', name: `layer${i + 1}.${b}`, out: width, stride: i > 0 && b === 0 ? 2 : 1 });
      });
      layers.push({ op: 'gap' }, dense('fc', nClasses));
      return layers;
    }
  }
}

/** A BasicBlock as plain layers: its main path, and its shortcut (empty = identity). */
export function blockParts(block: Extract<Layer, { op: 'block' }>, inChannels: number): { main: Layer[]; shortcut: Layer[] } {
  const { name, out, stride } = block;
  const main: Layer[] = [
    conv(`${name}.conv1`, 3, out, stride, false), { op: 'bn', name: `${name}.bn1` }, relu,
    conv(`${name}.conv2`, 3, out, 1, false), { op: 'bn', name: `${name}.bn2` },
  ];
  const shortcut: Layer[] =
    stride !== 1 || inChannels !== out ? [conv(`${name}.shortcut.conv`, 1, out, stride, false), { op: 'bn', name: `${name}.shortcut.bn` }] : [];
  return { main, shortcut };
}

/** Output size of a k×k convolution with padding ⌊k/2⌋ and the given stride. */
export function convOut(size: number, k: number, stride: number): number {
  return Math.floor((size + 2 * Math.floor(k / 2) - k) / stride) + 1;
}

/** The parameters of a layer list in flat order. */
export function paramDefs(layers: Layer[], input: ImageShape): ParamDef[] {
  return walkLayers(layers, input).params;
}

/**
 * Walks the layers, tracking the activation shape: the parameters in flat order, and the values the
 * convolutions output per image (what the memory of a forward and backward pass scales with).
 */
function walkLayers(layers: Layer[], input: ImageShape): { params: ParamDef[]; convOutputs: number } {
  const params: ParamDef[] = [];
  let convOutputs = 0;
  let shape: number[] = [...input];
  const walk = (ls: Layer[]): void => {
    for (const l of ls) {
      const [h, w, c] = shape as [number, number, number];
      switch (l.op) {
        case 'conv':
          params.push({ name: `${l.name}.weight`, shape: [l.k, l.k, c, l.out], role: 'weight', fanIn: l.k * l.k * c });
          if (l.bias) params.push({ name: `${l.name}.bias`, shape: [l.out], role: 'bias', fanIn: l.k * l.k * c });
          shape = [convOut(h, l.k, l.stride), convOut(w, l.k, l.stride), l.out];
          convOutputs += shape[0]! * shape[1]! * shape[2]!;
          break;
        case 'bn':
          params.push({ name: `${l.name}.gamma`, shape: [c], role: 'gamma', fanIn: 1 }, { name: `${l.name}.beta`, shape: [c], role: 'beta', fanIn: 1 });
          break;
        case 'maxpool':
          shape = [Math.floor(h / 2), Math.floor(w / 2), c];
          break;
        case 'gap':
          shape = [c];
          break;
        case 'flatten':
          shape = [shape.reduce((a, b) => a * b, 1)];
          break;
        case 'dense': {
          const fanIn = shape[0]!;
          params.push({ name: `${l.name}.weight`, shape: [fanIn, l.out], role: 'weight', fanIn }, { name: `${l.name}.bias`, shape: [l.out], role: 'bias', fanIn });
          shape = [l.out];
          break;
        }
        case 'block': {
          const { main, shortcut } = blockParts(l, c);
          walk(main);
          const out = shape;
          shape = [h, w, c];
          walk(shortcut);
          shape = out;
          break;
        }
        case 'relu':
          break;
      }
      if (shape.some((s) => !(s >= 1))) throw new RangeError(`input ${input.join('×')} is too small for layer ${'name' in l ? l.name : l.op}`);
    }
  };
  walk(layers);
  if (shape.length !== 1) throw new RangeError('the network must end in a dense layer');
  return { params, convOutputs };
}

/** A neural-network spec resolved: its layers, parameters in flat order, and the flat layout. */
export interface Network {
  kind: NnKind;
  input: ImageShape;
  layers: Layer[];
  params: ParamDef[];
  layout: ParamLayout;
  /** whether any layer is a BatchNorm (ResNet18's are) */
  batchNorm: boolean;
  /** rows per pass of evaluation, and of training without BatchNorm (see passRows) */
  chunkRows: number;
  /**
   * the largest training batch with BatchNorm: a batch is one pass, so that BatchNorm uses the whole
   * batch's statistics (see passRows); Infinity without BatchNorm, whose batches run in passes of chunkRows
   */
  maxBatchRows: number;
  /** training images whose BatchNorm statistics evaluation uses (evalReferenceOf); 0 without BatchNorm */
  referenceRows: number;
}

/** Bytes budgeted per convolution output value per image of a training pass (~60 measured for ResNet18). */
const TRAIN_BYTES_PER_VALUE = 80;

/**
 * Rows of a training pass within `budget` bytes of the wasm heap (4 GiB at most), and at most 128. A
 * training pass of ResNet18 at 32 rows measured 1.2 GiB, ~60 bytes per convolution output value per image
 * (activations, BatchNorm temporaries, gradients); an evaluation pass needs about a tenth of that per row.
 */
function passRows(convOutputs: number, budget: number): number {
  return Math.max(1, Math.min(128, Math.floor(budget / (TRAIN_BYTES_PER_VALUE * convOutputs))));
}

/** Training images behind the evaluation statistics of BatchNorm: up to 256, one pass of evaluation. */
const MAX_REFERENCE_ROWS = 256;

/**
 * Checks a neural-network spec and derives its layout. Conv and dense weights are prunable; biases and
 * BatchNorm γ, β only with `pruneAll`. Conv weights are stored [kh, kw, in, out], dense weights [in, out].
 */
export function networkOf(spec: ModelSpec): Network {
  const kind = spec.kind as NnKind;
  if (!NN_KINDS.includes(kind)) throw new RangeError(`not a neural-network kind: ${spec.kind}`);
  const input = spec.inputShape;
  if (!input || input.length !== 3 || !input.every((s) => Number.isInteger(s) && s >= 1)) {
    throw new RangeError(`a ${kind} model needs inputShape [height, width, channels] of positive integers, got ${JSON.stringify(input)}`);
  }
  if (spec.nFeatures !== input[0] * input[1] * input[2]) {
    throw new RangeError(`nFeatures (${spec.nFeatures}) must equal height·width·channels of inputShape ${input.join('×')}`);
  }
  if (!(Number.isInteger(spec.nClasses) && spec.nClasses >= 2)) throw new RangeError(`nClasses must be an integer >= 2, got ${spec.nClasses}`);
  if (!(Number.isFinite(spec.l2) && spec.l2 >= 0)) throw new RangeError(`l2 must be finite and >= 0, got ${spec.l2}`);
  const layers = layersOf(kind, spec.nClasses);
  const { params, convOutputs } = walkLayers(layers, input);
  const batchNorm = params.some((p) => p.role === 'gamma');
  const segments: Segment[] = [];
  let offset = 0;
  for (const p of params) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    segments.push({ name: p.name, offset, size, prunable: p.role === 'weight' || spec.pruneAll === true });
    offset += size;
  }
  // ResNet18 at 32×32: evaluation and BatchNorm-free passes of 32 rows (1.5 GiB budget); training batches
  // of up to 65 rows (3 GiB, one pass); the reference statistics from 256 rows (one evaluation pass, ~1 GiB)
  const chunkRows = passRows(convOutputs, 1.5 * 2 ** 30);
  return {
    kind,
    input,
    layers,
    params,
    layout: { d: offset, segments },
    batchNorm,
    chunkRows,
    maxBatchRows: batchNorm ? passRows(convOutputs, 3 * 2 ** 30) : Infinity,
    referenceRows: batchNorm ? Math.min(MAX_REFERENCE_ROWS, 8 * chunkRows) : 0,
  };
}
