/** Callback options of the library calls that cross to a worker as events on the task's port. */
export const EVENT_OPTIONS = ['onProgress', 'policyLog', 'onStage'];

/** One callback call: the option's name and its (cloneable) argument. */
export interface OffThreadEvent {
  option: string;
  data: unknown;
}
