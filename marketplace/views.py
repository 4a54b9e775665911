from django.shortcuts import get_object_or_404, render

from .models import Agent


def home(request):
    agents = Agent.objects.listed().for_cards().ordered("-rating")[:20]
    return render(request, "marketplace/home.html", {"agents": agents})


def agent_list(request):
    agents = Agent.objects.listed().for_cards().ordered("-rating")[:50]
    return render(request, "marketplace/home.html", {"agents": agents})


def agent_detail(request, slug):
    agent = get_object_or_404(Agent.objects.listed().for_detail(), slug=slug)
    return render(request, "marketplace/agent_detail.html", {"agent": agent})
