export { Btf, type BtfStruct, type BtfMember, type BtfVar } from './btf.js';
export { BpfError, NotSupportedError, VerifierError, errnoName } from './errors.js';
export { setLibbpfLogSink, type LibbpfLogLevel } from './libbpf.js';
export { attachTc, ClsactFilter, TcxLink, ifindexOf, CLSACT_FILTER, type AttachMode, type TcAttachment, type TcDirection } from './link.js';
export { BpfMap, TypedMap, MAP_TYPE, possibleCpus, type MapInfo } from './map.js';
export { RingBuffer } from './ringbuf.js';
export { BpfObject, BpfProgram, readObjectSpec, type LoadOptions, type ObjectSpec } from './object.js';
export { testRun, TC_ACT, type TestRunResult } from './testrun.js';
export { ensureBpffs } from './bpffs.js';
