/** Model input shapes given by name (`--input-shape name=1x224x224x3`), batch first. */
export type InputShapes = Record<string, number[]>;
