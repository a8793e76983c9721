// The CLI's metric sink. In the Fargate task (PGOPS_METRICS=cloudwatch, set by its task definition)
// a job's metrics go to CloudWatch with PutMetricData: EMF lines on stdout are not extracted from
// the awslogs driver's logs. Elsewhere (a laptop, CI) the CLI publishes nothing. The SDK client is
// loaded only when a job has something to publish.
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { Settings } from '../functions/core/config.ts';
import { METRIC_NAMESPACE, type MetricDatum, type MetricSink } from '../functions/core/metrics.ts';

/** The sink the settings ask for (PGOPS_METRICS, validated by loadSettings), or undefined (publish nothing). */
export function metricSinkFor(settings: Pick<Settings, 'metrics'>, client?: () => Promise<CloudWatchClient>): MetricSink | undefined {
  return settings.metrics === 'cloudwatch' ? cloudWatchSink(client) : undefined;
}

export function cloudWatchSink(client: () => Promise<CloudWatchClient> = defaultClient): MetricSink {
  return {
    async publish(databaseId: string, data: MetricDatum[]): Promise<void> {
      const { PutMetricDataCommand } = await import('@aws-sdk/client-cloudwatch');
      const timestamp = new Date();
      await (await client()).send(new PutMetricDataCommand({
        Namespace: METRIC_NAMESPACE,
        MetricData: data.map((d) => ({
          MetricName: d.name,
          Unit: d.unit,
          Value: d.value,
          Timestamp: timestamp,
          Dimensions: [{ Name: 'database', Value: databaseId }],
        })),
      }));
    },
  };
}

async function defaultClient(): Promise<CloudWatchClient> {
  const { CloudWatchClient: Client } = await import('@aws-sdk/client-cloudwatch');
  return new Client({});
}
