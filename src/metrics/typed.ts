// Narrow views of prom-client's metrics whose label *values* are typed, not just their names.
// prom-client only checks label names; a typo in a value ("sucess") would silently create a new
// series and break every dashboard filtering on it. The prom-client objects satisfy these
// interfaces structurally, so no wrapper runs at observe time.

/** A counter whose every increment must name all its labels. */
export interface LabelledCounter<L extends object> {
  inc(labels: L, value?: number): void;
}

/** A gauge whose every change must name all its labels. */
export interface LabelledGauge<L extends object> {
  set(labels: L, value: number): void;
  inc(labels: L, value?: number): void;
  dec(labels: L, value?: number): void;
}

/** A histogram whose every observation must name all its labels. */
export interface LabelledHistogram<L extends object> {
  observe(labels: L, value: number): void;
  /** Starts a timer; calling the returned function observes the elapsed seconds and returns them. */
  startTimer(labels: L): () => number;
}

/** A counter without labels. */
export interface PlainCounter {
  inc(value?: number): void;
}

/** A histogram without labels. */
export interface PlainHistogram {
  observe(value: number): void;
  startTimer(): () => number;
}

/** A counter bound to one label set (the child of a labelled counter). */
export interface BoundCounter {
  inc(value?: number): void;
}

/** A gauge bound to one label set. */
export interface BoundGauge {
  set(value: number): void;
  inc(value?: number): void;
  dec(value?: number): void;
}

/** A histogram bound to one label set. */
export interface BoundHistogram {
  observe(value: number): void;
}
