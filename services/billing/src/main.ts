import { runProcess } from '@atelier/kit';
import { startBilling } from './app';
import { billingConfigSchema } from './config';

runProcess('billing', billingConfigSchema, startBilling);
