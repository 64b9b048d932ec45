/**
 * The server's metrics in the Prometheus text format (version 0.0.4): counters, gauges and
 * histograms with labels, rendered on GET /metrics. Small on purpose: a client library
 * (prom-client) would bring a registry, default process metrics and a dependency for ~80 lines.
 */

type Labels = Record<string, string>;

function labelText(l: Labels): string {
  const keys = Object.keys(l);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${l[k].replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

class Counter {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelText(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

class Histogram {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const k = labelText(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const inner = k ? k.slice(1, -1) + ',' : '';
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{${inner}le="${b}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${inner}le="+Inf"} ${s.count}`, `${this.name}_sum${k} ${s.sum}`, `${this.name}_count${k} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** Every metric `recur serve` exports. */
export class ServeMetrics {
  readonly requests = new Counter('recur_http_requests_total', 'HTTP requests by route, method and status.');
  readonly latency = new Histogram('recur_http_request_duration_seconds', 'HTTP request latency by route.', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  readonly batchSize = new Histogram('recur_stream_batch_size', 'Stream steps computed together in one tick, by model.', [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
  readonly steps = new Counter('recur_stream_steps_total', 'Stream steps committed, by model.');
  readonly conflicts = new Counter('recur_stream_conflicts_total', 'Stream steps refused because another step changed the stream first (409).');
  readonly storeErrors = new Counter('recur_store_errors_total', 'Requests answered 503 because the stream store could not be reached.');

  /** The exposition text; `activeStreams` is read from the store at scrape time (null: unavailable). */
  render(activeStreams: number | null): string {
    const gauge = ['# HELP recur_streams_active Streams in the store that have not expired.', '# TYPE recur_streams_active gauge'];
    if (activeStreams !== null) gauge.push(`recur_streams_active ${activeStreams}`);
    return [this.requests, this.latency, this.batchSize, this.steps, this.conflicts, this.storeErrors].map((m) => m.render()).concat(gauge.join('\n')).join('\n') + '\n';
  }
}
