import type { Logger } from '@atelier/kit';
import type { Store } from '../repositories';
import type { ReservationRow } from '../repositories/credit-reservation.repository';
import type { CreditService } from './credit.service';

export interface ReservationSweepOptions {
  /**
   * A reservation open for longer than this has lost its owner: longer than any prompt can run
   * (inferencer fails one after PREDICTION_TIMEOUT_MS) and any pack run can take.
   */
  maxAgeMs: number;
  /** Longer than one release can take. */
  leaseMs: number;
}

/**
 * The sweep of orphaned reservations, as a claim-loop job. inferencer reserves credits before it
 * records the prompt or the run that will settle them; a crash in between, or an owner that never
 * comes back, would hold the credits forever. Releasing is the same `release` inferencer calls
 * (closed once, ledgered, refunds taken back), so a sweep racing a late settle changes nothing
 * twice: whichever closes the reservation first wins.
 */
export function reservationSweepJob(
  d: { store: Store; credits: CreditService; logger: Logger },
  o: ReservationSweepOptions,
) {
  const reservations = d.store.repos.reservations;
  return {
    name: 'reservation-sweep',
    claim: (limit: number) => reservations.claimStale(limit, o.maxAgeMs, o.leaseMs),
    handle: async (row: ReservationRow) => {
      await d.credits.release(row.id);
      d.logger.warn(
        { reservation_id: row.id, version_id: row.version_id, amount: row.amount },
        'swept a reservation open past its maximum age',
      );
    },
    idOf: (row: ReservationRow) => row.id,
    oldestDue: () => reservations.oldestStale(o.maxAgeMs),
  };
}
