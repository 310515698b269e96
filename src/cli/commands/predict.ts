import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { createModel, evalReferenceOf, initNnBackend, isNeuralNet, needsEvalReference } from '../../models/index.js';
import { loadRunData } from '../../sim/run.js';
import { dataConfig } from './evaluate.js';
import { inputTransformOf, labelMapOf, loadModel } from '../../models/io.js';
import { INPUT_FORMATS, inputFormatOf, predictionsOf, readInputRows, rowsFor, type InputFormat, type Prediction } from '../../models/predict.js';
import { toCsv, writeFileAtomic } from '../../report/io.js';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('write a saved model\'s predictions for the rows (or images) of a file')
    .argument('<model>', 'a model file (a run\'s model.safetensors)')
    .requiredOption('--input <file>', 'rows to predict: LIBSVM or CSV (raw features, as the training files), or CIFAR-style binary image records')
    .requiredOption('--out <file>', 'predictions: FILE.csv or FILE.jsonl')
    .addOption(new Option('--format <f>', 'input format (default: from the name: .csv, .bin, .libsvm/.svm/.txt)').choices([...INPUT_FORMATS]))
    .action(async (path: string, o: { input: string; out: string; format?: InputFormat }) => {
      const csv = /\.csv$/i.test(o.out);
      if (!csv && !/\.jsonl$/i.test(o.out)) throw new UsageError(`--out must name a .csv or .jsonl file, got ${o.out}`);
      const saved = loadModel(path);
      const transform = inputTransformOf(saved);
      const labelMap = labelMapOf(saved);
      const x = await readInputRows(o.input, o.format ?? inputFormatOf(o.input), saved.spec, transform);
      if (isNeuralNet(saved.spec)) await initNnBackend();
      // BatchNorm is evaluated with the statistics of a fixed sample of the run's training images
      const reference = needsEvalReference(saved.spec) ? evalReferenceOf(saved.spec, (await loadRunData(dataConfig(saved, path, {}))).dataset.clients) : undefined;
      const outputs = createModel(saved.spec, reference).outputs(saved.params, rowsFor(saved.spec, x));
      const predictions = predictionsOf(saved.spec, outputs, labelMap);
      writeFileAtomic(o.out, csv ? predictionsCsv(predictions, labelMap) : predictions.map((p) => JSON.stringify(p) + '\n').join(''));
      console.log(`${predictions.length} predictions -> ${o.out}`);
    });
}

/** One row per prediction: row, prediction, then probability (binary) or p_LABEL per class (multiclass). */
function predictionsCsv(predictions: Prediction[], labelMap: number[] | null): string {
  const classes = predictions[0]?.probabilities?.length ?? 0;
  const names = Array.from({ length: classes }, (_, c) => `p_${labelMap ? labelMap[c] : c}`);
  const rows = predictions.map(({ probabilities, ...rest }) => ({ ...rest, ...(probabilities ? Object.fromEntries(names.map((n, c) => [n, probabilities[c]])) : {}) }));
  return toCsv(rows);
}
