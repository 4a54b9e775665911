"""The signed-in user's knowledge base. Other users' entries answer 404, never 403."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from aios.pagination import page_or_first

from .caching import own_entries
from .forms import KnowledgeEntryForm, KnowledgeFilterForm
from .models import KnowledgeEntry

PAGE_SIZE = 20
ORDERING = ("updated_at", "desc")


def _own(request, pk):
    entries = KnowledgeEntry.objects.owned_by(request.user).with_agent()
    return get_object_or_404(entries, pk=pk)


@own_entries
@login_required
@require_safe
def entry_list(request):
    form = KnowledgeFilterForm(request.GET)
    entries = KnowledgeEntry.objects.owned_by(request.user).with_agent()
    if form.is_valid():
        data = form.cleaned_data
        entries = entries.filtered(content_type=data["type"], q=data["q"].strip())
    page, status = page_or_first(request, entries, ordering=ORDERING, page_size=PAGE_SIZE)
    status = 400 if form.errors else status
    filtered = form.is_valid() and any(form.cleaned_data.values())
    context = {"nav": "knowledge", "form": form, "page": page, "filtered": filtered}
    return render(request, "knowledge/entry_list.html", context, status=status)


@own_entries
@login_required
@require_safe
def entry_detail(request, pk):
    context = {"nav": "knowledge", "entry": _own(request, pk)}
    return render(request, "knowledge/entry_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def entry_create(request):
    form = KnowledgeEntryForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.instance.user = request.user
        entry = form.save()
        messages.success(request, f"“{entry.title}” is saved.")
        return redirect(entry)
    status = 400 if request.method == "POST" else 200
    context = {"nav": "knowledge", "form": form}
    return render(request, "knowledge/entry_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def entry_update(request, pk):
    entry = _own(request, pk)
    form = KnowledgeEntryForm(request.POST or None, instance=entry, user=request.user)
    if request.method == "POST" and form.is_valid():
        entry = form.save()
        messages.success(request, f"“{entry.title}” is updated.")
        return redirect(entry)
    status = 400 if request.method == "POST" else 200
    context = {"nav": "knowledge", "form": form, "entry": entry}
    return render(request, "knowledge/entry_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def entry_delete(request, pk):
    entry = _own(request, pk)
    if request.method == "POST":
        entry.delete()
        messages.success(request, f"“{entry.title}” is deleted.")
        return redirect("knowledge-list")
    context = {"nav": "knowledge", "entry": entry}
    return render(request, "knowledge/entry_confirm_delete.html", context)
