/**
 * The control commands of the watchdog and failover: `health`, `failover`, `failback` (and their
 * progress). Safety checks live in the controller; here only argument checks.
 */
import { FailoverController } from '../failover/failover-controller';
import { CoverageReplicator } from '../shadow/coverage';
import { ControlServer } from './control-server';

export function registerFailoverHandlers(control: ControlServer, failover: FailoverController, coverage: CoverageReplicator | undefined): void {
  control.on('health', async () => failover.status());
  control.on('failover', async (req) => {
    await failover.manualFailover(req.force === true, coverage);
    return failover.status();
  });
  control.on('failback', async (req) => {
    await failover.manualFailback(req.force === true);
    return failover.status();
  });
}
