export { packageVersion } from '../version';
