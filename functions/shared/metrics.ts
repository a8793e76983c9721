// The functions' metric sink: Powertools Metrics, written as an EMF log line that CloudWatch turns
// into metrics (namespace pgops, dimension `database` only). Its own module so the CLI never loads it.
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricDatum, MetricSink, MetricUnitName } from '../core/metrics.ts';
import { METRIC_NAMESPACE } from '../core/metrics.ts';

const UNITS: Record<MetricUnitName, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  Count: MetricUnit.Count,
  Seconds: MetricUnit.Seconds,
  Bytes: MetricUnit.Bytes,
  None: MetricUnit.NoUnit,
};

/** What the sink needs of Powertools Metrics (tests pass a recorder). */
export interface EmfMetrics {
  addDimension(name: string, value: string): unknown;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown;
  publishStoredMetrics(): unknown;
}

export function powertoolsMetrics(serviceName: string): EmfMetrics {
  const m = new Metrics({ namespace: METRIC_NAMESPACE, serviceName });
  // Only `database` as dimension, so an alarm names it alone.
  m.clearDefaultDimensions();
  return m;
}

export function emfSink(metrics: () => EmfMetrics): MetricSink {
  let m: EmfMetrics | undefined;
  return {
    publish(databaseId: string, data: MetricDatum[]): Promise<void> {
      const sink = (m ??= metrics());
      sink.addDimension('database', databaseId);
      for (const d of data) sink.addMetric(d.name, UNITS[d.unit], d.value);
      sink.publishStoredMetrics();
      return Promise.resolve();
    },
  };
}
