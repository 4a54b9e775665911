from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "aios.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from django.core.signals import request_finished
        from django.db.models.signals import post_save

        from . import context, dbinstrument

        dbinstrument.connect_signals()
        request_finished.connect(context.clear, dispatch_uid="aios-monitoring-context")
        post_save.connect(dbinstrument.count_model_save, dispatch_uid="aios-monitoring-save")
