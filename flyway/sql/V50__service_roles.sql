-- One role per service with rights on its own schema only: reading and writing rows, never DDL.
-- Flyway, which runs this, stays the owner of every schema and table. The roles cannot log in;
-- each service logs in as a member of its role (infra/postgres/login-roles.sql, run by compose's
-- db-roles after Flyway; docs/operations.md, "Database roles"). Roles belong to the cluster, not
-- the database, so they are created only where missing: several databases may share a cluster.
DO $$
DECLARE
  service text;
  role text;
BEGIN
  FOREACH service IN ARRAY ARRAY['billing', 'trainer', 'inferencer'] LOOP
    role := 'atelier_' || service;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created meanwhile by a migration of another database of the cluster
      END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', service, role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', service, role);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', service, role);
    -- Tables and sequences later migrations create (as the same owner) are granted likewise.
    EXECUTE format(
      'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', service, role);
    EXECUTE format(
      'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', service, role);
  END LOOP;
END $$;

-- Before PostgreSQL 15 every role may create objects in public, where Flyway keeps its history.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
