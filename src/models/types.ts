/** Feature matrices: dense row-major or CSR. Rows are samples. */
export interface DenseMatrix {
  kind: 'dense';
  rows: number;
  cols: number;
  /** rows * cols values, row-major */
  data: Float32Array;
}

export interface CsrMatrix {
  kind: 'csr';
  rows: number;
  cols: number;
  /** rows + 1 offsets into indices/values */
  indptr: Uint32Array;
  /** column of each stored value, increasing within a row */
  indices: Uint32Array;
  values: Float32Array;
}

export type Matrix = DenseMatrix | CsrMatrix;

/**
 * 'regression': y real. 'binary': y in {-1, +1}. 'multiclass': y in {0, ..., nClasses-1}.
 */
export type Task = 'regression' | 'binary' | 'multiclass';

/** One client's (or the test set's) samples. */
export interface Dataset {
  x: Matrix;
  y: Float32Array;
}

/** A named block of the flat parameter vector. */
export interface Segment {
  name: string;
  offset: number;
  size: number;
  /** pruned by TopK; non-prunable entries are kept dense and always communicated */
  prunable: boolean;
}

export interface ParamLayout {
  d: number;
  segments: Segment[];
}

/** The convex models (src/models/glm.ts). */
export type ConvexKind = 'linear' | 'logistic' | 'multinomial';

/** Plain-object description of a model: enough to rebuild it in a worker or on another machine. */
export interface ModelSpec {
  /** a convex model, or a neural network (src/models/nn, needs `await initNnBackend()` first) */
  kind: ConvexKind | 'cnn' | 'resnet18' | 'femnist-cnn';
  /** for a neural network: height × width × channels of the images, which rows hold in NHWC order */
  nFeatures: number;
  /** 1 for linear and binary logistic, C for multinomial */
  nClasses: number;
  /** learn an intercept (off by default, as in LIBLINEAR); the intercept is not prunable */
  intercept: boolean;
  /** L2 regularisation: adds (l2/2)||w||^2 to every client's loss (all parameters of a neural network) */
  l2: number;
  /** neural networks only: the input image shape [height, width, channels] */
  inputShape?: [number, number, number];
  /** neural networks only: make biases and BatchNorm γ, β prunable too (default: conv and dense weights only) */
  pruneAll?: boolean;
}

export interface Metric {
  name: 'r2' | 'accuracy';
  value: number;
}

export interface Model {
  readonly spec: ModelSpec;
  readonly layout: ParamLayout;
  /**
   * Loss of parameters x on `data` (mean over the rows, plus the L2 term). When `grad` is given, the
   * gradient is written into it. `rows` restricts to a minibatch (indices into data's rows). A network with
   * BatchNorm computes the loss without `grad` as it evaluates (training images' statistics, docs/nn.md).
   */
  lossGrad(x: Float32Array, data: Dataset, grad: Float32Array | null, rows?: Uint32Array): number;
  /** R^2 for regression, accuracy for classification. */
  metric(x: Float32Array, data: Dataset): Metric;
  /**
   * The model's outputs for every row, rows × nClasses row-major: the prediction for regression, the
   * log-odds for binary logistic, the logits (before softmax) for multiclass and networks.
   */
  outputs(x: Float32Array, rows: Matrix): Float64Array;
  /** Smoothness constant L of this loss on `data` (power iteration; an upper bound where exact is costly). */
  smoothness(data: Dataset): number;
  /** The initial parameters x₀ for a seed, the same on every client; absent: x₀ = 0. */
  init?(seed: number): Float32Array;
}
