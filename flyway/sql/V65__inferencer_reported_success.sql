-- A prediction's success as Replicate's webhook reported it ({"outputs": [urls], "predict_time": s}),
-- kept until the claim loop has copied the outputs into the bucket and settled the prompt: the
-- webhook is answered once this is recorded, so the copy never runs under the gateway's deadline.
ALTER TABLE inferencer.prompts ADD COLUMN reported_success jsonb;
