"""Blueprints: a company's CRM configuration as a folder of YAML files, planned, applied,
exported and tested like code (DESIGN.md, "Blueprints")."""

from .files import Blueprint, BlueprintError, load
from .service import BlueprintPlan, BlueprintService, Library

__all__ = ["Blueprint", "BlueprintError", "BlueprintPlan", "BlueprintService", "Library", "load"]
