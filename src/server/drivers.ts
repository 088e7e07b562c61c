// Which of the plugin socket's drivers are served (DMTHIN_GRAPHDRIVER,
// DMTHIN_VOLUMEDRIVER): Plugin.Activate names only those, and a call to
// one that is turned off gets a 404 with an Err naming the setting, so
// that whoever sends it learns why.
import type { NextFunction, Request, Response } from 'express';
import type { DriverSwitches } from '../config';
import { refusal, reply } from './reply';

export const ALL_DRIVERS: DriverSwitches = { graph: true, volume: true };

/** Plugin.Activate's Implements. */
export function implementsOf(drivers: DriverSwitches): string[] {
  return [...(drivers.graph ? ['GraphDriver'] : []), ...(drivers.volume ? ['VolumeDriver'] : [])];
}

/** The setting that turned off the driver of `method` (e.g. `VolumeDriver.Create`), or null when it is served. */
export function turnedOffBy(drivers: DriverSwitches, method: string): string | null {
  if (!drivers.graph && method.startsWith('GraphDriver.')) return 'DMTHIN_GRAPHDRIVER';
  if (!drivers.volume && method.startsWith('VolumeDriver.')) return 'DMTHIN_VOLUMEDRIVER';
  return null;
}

/** Answers calls to a driver that is turned off, before any body is read. */
export function refuseTurnedOff(drivers: DriverSwitches) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const method = req.path.slice(1);
    const setting = turnedOffBy(drivers, method);
    if (setting === null) return next();
    req.resume();
    reply(res, refusal(method, `this dmthin does not serve the ${method.split('.')[0] ?? ''} (${setting}=off)`), 404);
  };
}
