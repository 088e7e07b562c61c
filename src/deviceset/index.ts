export { DeviceSet, type AddDeviceOptions, type CreateDeviceOptions, type DeleteDeviceOptions, type DeviceSetConfig, type DeviceUsage, type FaultyDevice, type MountOptions } from './deviceset';
export { DeviceSetHolder, NO_DEVICE_MAPPER } from './holder';
export { ConsumerDevices } from './consumer-devices';
export { deviceHashOf, deviceOwner, type DeviceOwner } from './namespaces';
export type { FsType } from './filesystem';
export { parseOptions, storageOptions, splitOptionList, DEFAULT_OPTIONS, type DeviceSetOptions } from './options';
export type { StatusRow } from './status';
