import { runProcess } from '@atelier/kit';
import { startInferencer } from './app';
import { inferencerConfigSchema } from './config';

runProcess('inferencer', inferencerConfigSchema, startInferencer);
