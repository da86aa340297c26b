-- V2: the default roles every company starts with.
--
-- Inserted by a migration (not by seed_company) so they are already in the template database
-- that new companies are copied from. Companies may edit them or add their own later; a later
-- migration that changes defaults must therefore update carefully (e.g. only rows still equal
-- to the old default).
--
-- Permission strings are '<area>.<verb>'; '*' grants everything.

INSERT INTO roles (code, name, description, permissions) VALUES
    ('admin',
     'Administrator',
     'Full access, including company settings, members and roles.',
     ARRAY['*']),
    ('manager',
     'Manager',
     'Manages employees, departments and the chart of accounts; cannot change company settings or members.',
     ARRAY['employees.read', 'employees.write', 'employees.delete',
           'departments.read', 'departments.write',
           'accounts.read', 'accounts.write',
           'settings.read']),
    ('staff',
     'Staff',
     'Reads the company''s records and keeps employee details up to date.',
     ARRAY['employees.read', 'employees.write',
           'departments.read',
           'accounts.read',
           'settings.read']);
