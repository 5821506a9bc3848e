from services.attribution.models import Base
from shared.env_template import run_migrations

run_migrations(Base.metadata)
