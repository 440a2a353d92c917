import { runProcess } from '@atelier/kit';
import { startGateway } from './app';
import { gatewayConfigSchema } from './config';

runProcess('gateway', gatewayConfigSchema, startGateway);
