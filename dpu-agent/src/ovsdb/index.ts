export * from './atoms.ts';
export * from './ops.ts';
export * from './schema.ts';
export * from './replica.ts';
export { Monitor, type MonitorRequests, type MonitorTableRequest } from './monitor.ts';
export { OvsdbClient, type OvsdbClientOptions, type OpResult, type TransactOptions } from './client.ts';
export { TableView, ovnNbColumns, vswitchColumns, type ColumnSelection, type RowOf, type RowSource, type SelectedRow } from './model/index.ts';
