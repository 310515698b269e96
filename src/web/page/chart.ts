/**
 * One chart of the dashboard: a PlotSpec drawn by vega-embed from the project's Vega-Lite spec (the same
 * as the static plots), on a canvas, with tooltips, and buttons to download its data (CSV) and its
 * drawing (SVG). Vega expressions are evaluated by vega-interpreter, so the page needs no eval.
 */
import embed from 'vega-embed';
import { expressionInterpreter } from 'vega-interpreter';
import { thinForDisplay, vegaLiteSpec, type PlotSpec } from '../../report/vegalite.js';
import { toCsv } from './csv.js';
import { el } from './dom.js';

type View = Awaited<ReturnType<typeof embed>>['view'];

/** the plot's width in CSS pixels */
const WIDTH = 400;

export interface Chart {
  id: string;
  element: HTMLElement;
  /** draws `plot` (replacing what was drawn); resolves when drawn */
  draw(plot: PlotSpec): Promise<void>;
  view(): View | null;
  destroy(): void;
}

export function createChart(id: string): Chart {
  const target = el('div', { class: 'plot' });
  const csv = el('button', { type: 'button', title: 'the plotted points as CSV' }, 'CSV');
  const svg = el('button', { type: 'button', title: 'the chart as SVG' }, 'SVG');
  const element = el('figure', { class: 'chart', 'data-figure': id }, el('div', { class: 'tools' }, csv, svg), target);
  let current: { view: View; plot: PlotSpec } | null = null;
  let drawing: Promise<void> = Promise.resolve();

  csv.addEventListener('click', () => {
    if (current) download(`${id}.csv`, 'text/csv', toCsv(current.plot));
  });
  svg.addEventListener('click', () => {
    if (current) void current.view.toSVG().then((s) => download(`${id}.svg`, 'image/svg+xml', s));
  });

  const draw = async (plot: PlotSpec): Promise<void> => {
    // long curves thinned to the lowest and highest point of every 2 pixels: the same line, far fewer
    // points to lay out and draw
    const spec = vegaLiteSpec({ ...thinForDisplay(plot, WIDTH / 2), hover: true, width: WIDTH, height: 240 });
    // the legend under the plot, so two charts fit side by side at 1280 pixels
    (spec['config'] as { legend: Record<string, unknown> }).legend = { ...(spec['config'] as { legend: object }).legend, orient: 'bottom', columns: 2, symbolSize: 300 };
    const result = await embed(target, spec as never, {
      renderer: 'canvas',
      actions: false,
      ast: true,
      expr: expressionInterpreter,
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true },
    });
    current?.view.finalize();
    current = { view: result.view, plot };
    element.dataset['drawn'] = String(Number(element.dataset['drawn'] ?? 0) + 1);
  };

  return {
    id,
    element,
    // one drawing at a time, in order
    draw: (plot) => (drawing = drawing.then(() => draw(plot))),
    view: () => current?.view ?? null,
    destroy: () => {
      current?.view.finalize();
      current = null;
    },
  };
}

function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * What a chart drew, read from Vega's scenegraph (for tests and the benchmark): the lines of the line
 * layer that have points, and their points.
 */
export function drawnLines(view: View): { series: number; points: number } {
  let series = 0;
  let points = 0;
  interface Node {
    marktype?: string;
    role?: string;
    items?: Node[];
  }
  const visit = (node: Node): void => {
    if (node.marktype === 'line') {
      const n = node.items?.length ?? 0;
      if (n > 0) {
        series++;
        points += n;
      }
      return;
    }
    for (const child of node.items ?? []) visit(child);
  };
  visit((view.scenegraph() as unknown as { root: Node }).root);
  return { series, points };
}
