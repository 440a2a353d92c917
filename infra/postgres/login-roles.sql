-- The login roles the services connect as: billing, trainer and inferencer, each a member of the
-- role V50__service_roles.sql grants its schema to, so each reads and writes its own schema only.
-- Run after Flyway, as the owner, with the passwords in the session settings
-- atelier.<service>_password (compose's db-roles sets them from .env). Safe to re-run: an
-- existing role gets the password again, which is also how a password is rotated.
DO $$
DECLARE
  service text;
  password text;
BEGIN
  FOREACH service IN ARRAY ARRAY['billing', 'trainer', 'inferencer'] LOOP
    password := current_setting('atelier.' || service || '_password', true);
    IF coalesce(password, '') = '' THEN
      RAISE EXCEPTION 'no password for the % role: set atelier.%_password', service, service;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = service) THEN
      EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', service, password);
    ELSE
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', service, password);
    END IF;
    EXECUTE format('GRANT %I TO %I', 'atelier_' || service, service);
  END LOOP;
END $$;
