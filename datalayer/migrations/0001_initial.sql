-- Domain tables of the salon-booking service.
-- Ids from the booking system are yclients_* integers; company_id is the salon.
-- Every upsert target's conflict key is its primary key.

CREATE TABLE companies (
    company_id  bigint PRIMARY KEY,
    title       text NOT NULL,
    timezone    text,
    phone       text,
    is_active   boolean NOT NULL DEFAULT true,
    raw_data    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
    yclients_id      bigint NOT NULL,
    company_id       bigint NOT NULL,
    name             text,
    phone            text CHECK (phone ~ '^[0-9]{10,15}$'),
    email            text,
    last_visit_date  date,
    visit_count      integer NOT NULL DEFAULT 0 CHECK (visit_count >= 0),
    tags             text[] NOT NULL DEFAULT '{}',
    preferences      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (yclients_id, company_id)
);
-- Not unique: the booking system lets two clients share a phone (a parent booking for a
-- child), and a sync must not fail on them; get_client_by_phone takes the latest updated.
CREATE INDEX clients_phone_idx ON clients (phone, updated_at DESC);
CREATE INDEX clients_company_name_idx ON clients (company_id, name);

CREATE TABLE services (
    yclients_id  bigint NOT NULL,
    company_id   bigint NOT NULL,
    title        text NOT NULL,
    category_id  bigint,
    price_min    numeric(12, 2) CHECK (price_min >= 0),
    price_max    numeric(12, 2) CHECK (price_max >= 0),
    duration     integer CHECK (duration >= 0),
    is_active    boolean NOT NULL DEFAULT true,
    weight       integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (yclients_id, company_id),
    CHECK (price_min IS NULL OR price_max IS NULL OR price_min <= price_max)
);
CREATE INDEX services_company_category_idx ON services (company_id, category_id);

CREATE TABLE staff (
    yclients_id     bigint NOT NULL,
    company_id      bigint NOT NULL,
    name            text NOT NULL,
    specialization  text,
    is_active       boolean NOT NULL DEFAULT true,
    rating          double precision CHECK (rating >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (yclients_id, company_id)
);
CREATE INDEX staff_company_idx ON staff (company_id);

CREATE TABLE staff_schedules (
    yclients_staff_id  bigint NOT NULL,
    company_id         bigint NOT NULL,
    staff_name         text,
    date               date NOT NULL,
    is_working         boolean NOT NULL DEFAULT true,
    work_start         time,
    work_end           time,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (yclients_staff_id, date, company_id)
);
CREATE INDEX staff_schedules_company_date_idx ON staff_schedules (company_id, date);

CREATE TABLE bookings (
    yclients_record_id  bigint NOT NULL,
    company_id          bigint NOT NULL,
    client_yclients_id  bigint,
    client_phone        text,
    staff_id            bigint,
    service_ids         integer[] NOT NULL DEFAULT '{}',
    datetime            timestamptz NOT NULL,
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'completed', 'cancelled')),
    cost                numeric(12, 2) CHECK (cost >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (yclients_record_id, company_id)
);
CREATE INDEX bookings_client_datetime_idx ON bookings (client_yclients_id, datetime);
CREATE INDEX bookings_company_datetime_idx ON bookings (company_id, datetime);

CREATE TABLE dialog_contexts (
    user_id        text NOT NULL,
    company_id     bigint NOT NULL,
    state          text,
    data           jsonb NOT NULL DEFAULT '{}'::jsonb,
    messages       jsonb NOT NULL DEFAULT '[]'::jsonb,
    last_activity  timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, company_id)
);
CREATE INDEX dialog_contexts_last_activity_idx ON dialog_contexts (last_activity);
