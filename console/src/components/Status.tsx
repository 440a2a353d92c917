const LABELS: Record<string, string> = {
  starting: 'Starting',
  processing: 'Processing',
  succeeded: 'Ready',
  failed: 'Failed',
  canceled: 'Canceled',
  pending: 'Pending',
  paid: 'Paid',
  expired: 'Expired',
  refunded: 'Refunded',
  delivered: 'Delivered',
  enabled: 'Enabled',
  failing: 'Failing',
  disabled: 'Disabled',
};

export const isRunning = (status: string) => status === 'starting' || status === 'processing';

export function Status({ status }: { status: string }) {
  return <span className={`status status-${status}`}>{LABELS[status] ?? status}</span>;
}
