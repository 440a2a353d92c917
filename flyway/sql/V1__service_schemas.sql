-- One schema per service; each service is the only code that touches its own.
CREATE SCHEMA IF NOT EXISTS billing;
CREATE SCHEMA IF NOT EXISTS trainer;
CREATE SCHEMA IF NOT EXISTS inferencer;
