export { DeviceSet, type AddDeviceOptions, type DeviceSetConfig, type FaultyDevice } from './deviceset';
export { parseOptions, storageOptions, splitOptionList, DEFAULT_OPTIONS, type DeviceSetOptions } from './options';
export type { StatusRow } from './status';
